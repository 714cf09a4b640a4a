package crust

import (
	"github.com/crust-p2p/crust/actors"
	"github.com/crust-p2p/crust/bootstrap"
)

// Errors returned by Service methods; compare with errors.Is.
var (
	// ErrQueueFull: the peer's send queue is full (it or the path to it is slower
	// than the sender). Retry later, or set Config.SendBlocks.
	ErrQueueFull = actors.ErrQueueFull
	// ErrNotConnected: the peer has no live connection. Connect first, or wait for
	// PeerConnected.
	ErrNotConnected = actors.ErrNotConnected
	// ErrClosed: the Service was closed.
	ErrClosed = actors.ErrClosed
	// ErrSelf: the contact is this node.
	ErrSelf = actors.ErrSelf
	// ErrMessageTooLarge: the message exceeds Config.MaxMessageSize.
	ErrMessageTooLarge = actors.ErrMessageTooLarge
	// ErrBlocked: the NodeID is on the Blacklist, or not on a non-empty Whitelist.
	ErrBlocked = actors.ErrBlocked
	// ErrLocked: another process (or Service) uses the data directory's bootstrap
	// cache; the error names the lock file.
	ErrLocked = bootstrap.ErrLocked
)
