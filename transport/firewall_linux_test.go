package transport_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crust-p2p/crust/transport"
)

// minHopsListener listens on addr and drops packets that arrive with a hop limit below
// minHops (IP_MINTTL, IPV6_MINHOPCOUNT): on loopback, where hop limits do not shrink,
// it tells whether the SYN carried the hop limit asked for.
func minHopsListener(t *testing.T, addr string, ip6 bool, minHops int) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		level, opt := unix.IPPROTO_IP, unix.IP_MINTTL
		if ip6 {
			level, opt = unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT
		}
		var optErr error
		err := rc.Control(func(fd uintptr) { optErr = unix.SetsockoptInt(int(fd), level, opt, minHops) })
		if err != nil {
			return err
		}
		return optErr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// The firewall-opening SYN carries the hop limit asked for: a listener that requires
// two hops ignores the SYN with one (OpenFirewall still succeeds: it sent the SYN) and
// accepts the one with two.
func TestTCPOpenFirewallHopLimit(t *testing.T) {
	for _, family := range families {
		t.Run(family.name, func(t *testing.T) {
			checkLeaks(t)
			if family.ipv6 {
				requireIPv6(t)
			}
			a := newNode(t, nil)
			lnA := a.listen(t, family.addr)[0]
			target := minHopsListener(t, family.addr, family.ipv6, 2)
			to := transport.AddrPortOf(target.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			if err := a.tcp.OpenFirewall(ctx, to, 1); err != nil {
				t.Fatalf("OpenFirewall with 1 hop: %v", err)
			}
			// OpenFirewall has waited for its SYN: had it been accepted, it would be
			// queued by now.
			target.SetDeadline(time.Now())
			if c, err := target.Accept(); err == nil {
				c.Close()
				t.Fatal("a SYN with 1 hop reached a listener that requires 2")
			}
			target.SetDeadline(time.Now().Add(guard))
			if err := a.tcp.OpenFirewall(ctx, to, 2); err != nil {
				t.Fatalf("OpenFirewall with 2 hops: %v", err)
			}
			c, err := target.Accept()
			if err != nil {
				t.Fatalf("the SYN with 2 hops did not arrive: %v", err)
			}
			c.Close()
			if got := transport.AddrPortOf(c.RemoteAddr()); got != lnA.Endpoint().Addr {
				t.Fatalf("the SYN came from %v, want our listen address %v", got, lnA.Endpoint())
			}
		})
	}
}
