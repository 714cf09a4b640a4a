package actors

import (
	"errors"
	"fmt"
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

// errAborted marks a connection goroutine stopped by its owner.
var errAborted = errors.New("connection closed locally")

// errProtocol is a frame that has no business after the handshake.
func errProtocol(m any) error {
	return fmt.Errorf("protocol error: unexpected %T after the handshake", m)
}
