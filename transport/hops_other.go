//go:build !linux

package transport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// HopsTo estimates how many routers lie between us and raddr's address. It needs
// Linux (IP_RECVERR); here it returns errors.ErrUnsupported. See the Linux version.
func HopsTo(ctx context.Context, raddr netip.AddrPort, maxHops int) (int, error) {
	return 0, fmt.Errorf("counting hops to %s: %w on this system", raddr.Addr(), errors.ErrUnsupported)
}
