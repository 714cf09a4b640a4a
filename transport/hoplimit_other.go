//go:build !linux

package transport

import (
	"errors"
	"fmt"
)

// ttlControlMessage: sending one IPv4 datagram with its own TTL is implemented for
// Linux only.
func ttlControlMessage(int) ([]byte, error) {
	return nil, fmt.Errorf("%w: per-datagram IPv4 TTL on this system", errors.ErrUnsupported)
}
