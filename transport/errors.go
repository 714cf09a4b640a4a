package transport

import (
	"errors"
	"fmt"
)

// ErrVersion is returned when the peer speaks another protocol version.
var ErrVersion = errors.New("peer speaks an incompatible protocol version")

// ErrBadHello is returned when the peer's first frame is not a valid Hello.
var ErrBadHello = errors.New("peer sent an invalid Hello")

// ErrBlocked is the accepting side's handshake error for a node that Common.Allow
// refuses.
var ErrBlocked = errors.New("peer blocked by our whitelist or blacklist")

// ErrRefused is the dialling side's handshake error when the peer answers with a
// Goodbye instead of a Hello (it blocks us, say); the error carries its reason.
var ErrRefused = errors.New("peer refused the connection")

// ListenError is a listen address that could not be bound.
type ListenError struct {
	Addr string
	Err  error
}

// Error names the address and the cause.
func (e *ListenError) Error() string { return fmt.Sprintf("listening on %s: %v", e.Addr, e.Err) }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }
