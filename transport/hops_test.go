package transport_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
)

// On loopback no router lies between us and the destination.
func TestHopsToLoopback(t *testing.T) {
	for _, family := range []struct {
		name, addr string
		ipv6       bool
	}{{"IPv4", "127.0.0.1:4000", false}, {"IPv6", "[::1]:4000", true}} {
		t.Run(family.name, func(t *testing.T) {
			checkLeaks(t)
			if family.ipv6 {
				requireIPv6(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			start := time.Now()
			hops, err := transport.HopsTo(ctx, netip.MustParseAddrPort(family.addr), 8)
			if errors.Is(err, errors.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil || hops != 0 {
				t.Fatalf("HopsTo(%s) = %d, %v; want 0 routers", family.addr, hops, err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("HopsTo took %v to answer for loopback", took)
			}
		})
	}
}

func TestHopsToRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		addr string
		max  int
	}{{"127.0.0.1:1", 0}, {"127.0.0.1:1", 256}, {"0.0.0.0:1", 4}, {"[ff02::1]:1", 4}} {
		if hops, err := transport.HopsTo(ctx, netip.MustParseAddrPort(tt.addr), tt.max); err == nil {
			t.Errorf("HopsTo(%s, %d) = %d", tt.addr, tt.max, hops)
		}
	}
}
