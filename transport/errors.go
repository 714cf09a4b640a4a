package transport

import (
	"errors"
	"fmt"
)

// ErrVersion is returned when the peer speaks another protocol version.
var ErrVersion = errors.New("peer speaks an incompatible protocol version")

// ErrBadHello is returned when the peer's first frame is not a valid Hello.
var ErrBadHello = errors.New("peer sent an invalid Hello")

// ListenError is a listen address that could not be bound.
type ListenError struct {
	Addr string
	Err  error
}

// Error names the address and the cause.
func (e *ListenError) Error() string { return fmt.Sprintf("listening on %s: %v", e.Addr, e.Err) }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }
