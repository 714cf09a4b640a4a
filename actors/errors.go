package actors

import (
	"errors"
	"fmt"

	"github.com/crust-p2p/crust/transport/wire"
)

// ErrQueueFull is returned by Send when the peer's send queue is full: the peer (or
// the network to it) is slower than the sender. Retry later, or enable blocking sends.
var ErrQueueFull = errors.New("send queue full")

// ErrNotConnected is returned for a peer that has no live connection.
var ErrNotConnected = errors.New("peer not connected")

// ErrClosed is returned after the Service was closed.
var ErrClosed = errors.New("service closed")

// ErrSelf is returned when asked to connect to our own NodeID.
var ErrSelf = errors.New("cannot connect to self")

// ErrMessageTooLarge is returned by Send for a message over the maximum message size.
var ErrMessageTooLarge = errors.New("message larger than the maximum message size")

// ErrBlocked is returned for a NodeID the node's policy refuses (blacklisted, or not
// whitelisted).
var ErrBlocked = errors.New("peer blocked by the whitelist or blacklist")

// errAborted marks a connection goroutine stopped by its owner.
var errAborted = errors.New("connection closed locally")

// errUnexpectedFrame marks a frame that has no business after the handshake.
var errUnexpectedFrame = errors.New("protocol error: unexpected frame")

func errProtocol(m any) error {
	return fmt.Errorf("%w: %T after the handshake", errUnexpectedFrame, m)
}

// isProtocolError reports whether a read error is the peer's fault (bad frames)
// rather than the network's.
func isProtocolError(err error) bool {
	return errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) || errors.Is(err, errUnexpectedFrame)
}
