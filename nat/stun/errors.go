package stun

import (
	"errors"
	"fmt"
)

// ErrNotSTUN is returned for bytes that are not a well-formed STUN message: too short
// or too long, no magic cookie, a length field that does not match, attributes that
// overrun the message, or a bad FINGERPRINT.
var ErrNotSTUN = errors.New("not a STUN message")

// ErrNotResponse is returned for a well-formed STUN message that is not a Binding
// success or error response (a request, an indication, another method).
var ErrNotResponse = errors.New("not a STUN Binding response")

// ErrWrongTransaction is returned for a response to a transaction other than ours.
var ErrWrongTransaction = errors.New("STUN response is for another transaction")

// ErrNoAddress is returned for a Binding success response that carries no usable
// XOR-MAPPED-ADDRESS or MAPPED-ADDRESS.
var ErrNoAddress = errors.New("STUN response has no mapped address")

// ErrNoResponse is returned when a server did not answer before the retransmissions
// ran out or the context ended. Check that the server address is right and that
// UDP (or TCP) to it is not blocked.
var ErrNoResponse = errors.New("no response")

// ErrTooManyPending is returned by [UDP.Binding] when too many Bindings are already
// waiting for answers on the socket; retry once some have finished.
var ErrTooManyPending = errors.New("too many STUN requests in flight")

// ErrDisagree is returned by [Resolve] when the servers that answered report
// different mapped addresses: the NAT maps endpoint-dependently (symmetric NAT), or
// a server is wrong. The outcomes say which server reported what.
var ErrDisagree = errors.New("STUN servers disagree on the mapped address")

// ErrNoServers is returned by [Resolve] when it is given no servers to ask.
var ErrNoServers = errors.New("no STUN servers given; configure at least one")

// ServerError is a STUN error response: the server understood the request and
// refused it (401 Unauthorized from a server that wants credentials, say).
type ServerError struct {
	// Code is the ERROR-CODE number (300 to 699), or 0 if the response had none.
	Code int
	// Reason is the server's reason phrase, possibly empty.
	Reason string
}

// Error gives the code and the reason, as "stun server answered error 401 Unauthorized".
func (e *ServerError) Error() string {
	if e.Code == 0 {
		return "stun server answered an error without an ERROR-CODE"
	}
	if e.Reason == "" {
		return fmt.Sprintf("stun server answered error %d", e.Code)
	}
	return fmt.Sprintf("stun server answered error %d %s", e.Code, e.Reason)
}
