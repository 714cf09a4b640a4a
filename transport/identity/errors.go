package identity

import (
	"errors"
	"fmt"
)

// ErrBadNodeID is returned for text or bytes that are not a NodeID.
var ErrBadNodeID = errors.New("invalid node ID")

// ErrBadKeyFile is returned when the key file exists but cannot be used; the node does
// not silently replace it, since that would change its NodeID.
var ErrBadKeyFile = errors.New("invalid node key file")

// ErrNoCertificate is returned when the peer presented no TLS certificate.
var ErrNoCertificate = errors.New("peer presented no certificate")

// WrongPeerError is returned when a dialled peer proves a different NodeID than the one
// the dialer expected: the endpoint belongs to another node, or someone is in the way.
type WrongPeerError struct {
	Want, Got NodeID
}

// Error names both NodeIDs and what to check.
func (e *WrongPeerError) Error() string {
	return fmt.Sprintf("peer proved node ID %s, but %s was expected: the address belongs to another node; check the contact", e.Got, e.Want)
}
