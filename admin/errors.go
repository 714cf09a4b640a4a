package admin

import "errors"

// ErrInUse: another daemon is listening on the admin address. Stop it first, or give
// this one another admin address.
var ErrInUse = errors.New("another daemon is listening on the admin address")

// Error is an error answer from the daemon: the request reached it and was refused
// or failed there (the connection is still usable).
type Error struct {
	// Op is the request's op, e.g. "connect".
	Op string
	// Message is the daemon's reason, e.g. "sending to ABCDEFGH: peer not connected".
	Message string
}

// Error returns the daemon's message.
func (e *Error) Error() string { return e.Message }
