package transport_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// families are the loopback addresses tests run on.
var families = []struct {
	name, addr string
	ipv6       bool
}{{"IPv4", "127.0.0.1:0", false}, {"IPv6", "[::1]:0", true}}

// On loopback even one hop reaches the destination, so a listener there accepts the
// SYN: proof that it left from our listen port.
func TestTCPOpenFirewall(t *testing.T) {
	for _, family := range families {
		t.Run(family.name, func(t *testing.T) {
			checkLeaks(t)
			if family.ipv6 {
				requireIPv6(t)
			}
			a := newNode(t, nil)
			lnA := a.listen(t, family.addr)[0]
			target, err := net.Listen("tcp", family.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer target.Close()
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			start := time.Now()
			if err := a.tcp.OpenFirewall(ctx, transport.AddrPortOf(target.Addr()), 1); err != nil {
				t.Fatalf("OpenFirewall: %v", err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("OpenFirewall took %v", took)
			}
			target.(*net.TCPListener).SetDeadline(time.Now().Add(guard))
			c, err := target.Accept()
			if err != nil {
				t.Fatalf("the SYN did not arrive: %v", err)
			}
			c.Close()
			if got := transport.AddrPortOf(c.RemoteAddr()); got != lnA.Endpoint().Addr {
				t.Fatalf("the SYN came from %v, want our listen address %v", got, lnA.Endpoint())
			}

			// Again to the same address: the first attempt left nothing that holds the
			// 4-tuple.
			if err := a.tcp.OpenFirewall(ctx, transport.AddrPortOf(target.Addr()), 1); err != nil {
				t.Fatalf("second OpenFirewall: %v", err)
			}
			if c, err := target.Accept(); err != nil {
				t.Fatalf("the second SYN did not arrive: %v", err)
			} else {
				c.Close()
			}

			// A port that refuses: the SYN went all the way and drew a reset.
			target.Close()
			if err := a.tcp.OpenFirewall(ctx, transport.AddrPortOf(target.Addr()), 1); !errors.Is(err, transport.ErrFirewallPunchReset) {
				t.Fatalf("OpenFirewall to a closed port = %v, want ErrFirewallPunchReset", err)
			}
		})
	}
}

func TestOpenFirewallRefuses(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, nil)
	ctx := context.Background()
	target := netip.MustParseAddrPort("127.0.0.1:9")
	if err := a.tcp.OpenFirewall(ctx, target, 1); err == nil {
		t.Error("OpenFirewall without a listener succeeded")
	}
	a.listen(t, "127.0.0.1:0")
	for _, hops := range []int{0, -1, 256} {
		if err := a.tcp.OpenFirewall(ctx, target, hops); err == nil {
			t.Errorf("OpenFirewall with %d hops succeeded", hops)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.tcp.OpenFirewall(cancelled, target, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("OpenFirewall with a cancelled ctx = %v", err)
	}
	q := newQUICNode(t)
	for _, hops := range []int{0, 256} {
		if err := q.q.OpenFirewall(target, hops); err == nil {
			t.Errorf("QUIC OpenFirewall with %d hops succeeded", hops)
		}
	}
	if err := q.q.OpenFirewall(netip.MustParseAddrPort("[::1]:9"), 1); err == nil {
		t.Error("QUIC OpenFirewall to IPv6 without an IPv6 socket succeeded")
	}
}

// hopReceiver is a plain UDP socket that reports the hop limit of what it receives.
type hopReceiver struct {
	pc   net.PacketConn
	read func() ([]byte, int, net.Addr, error)
}

func newHopReceiver(t *testing.T, addr string, ip6 bool) *hopReceiver {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	pc.SetDeadline(time.Now().Add(guard))
	r := &hopReceiver{pc: pc}
	buf := make([]byte, 1500)
	if ip6 {
		p := ipv6.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
			t.Fatal(err)
		}
		r.read = func() ([]byte, int, net.Addr, error) {
			n, cm, from, err := p.ReadFrom(buf)
			if err != nil || cm == nil {
				return nil, 0, from, err
			}
			return buf[:n], cm.HopLimit, from, nil
		}
	} else {
		p := ipv4.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			t.Fatal(err)
		}
		r.read = func() ([]byte, int, net.Addr, error) {
			n, cm, from, err := p.ReadFrom(buf)
			if err != nil || cm == nil {
				return nil, 0, from, err
			}
			return buf[:n], cm.TTL, from, nil
		}
	}
	return r
}

// punchPacket is node id's punch packet, byte for byte.
func punchPacket(id identity.NodeID) string { return "\x00CRUSTPUNCH\x02" + string(id[:]) }

// QUIC's firewall punch is the punch packet with the hop limit asked for, from the
// QUIC socket; the socket's other packets keep the default.
func TestQUICOpenFirewall(t *testing.T) {
	for _, family := range families {
		t.Run(family.name, func(t *testing.T) {
			checkLeaks(t)
			if family.ipv6 {
				requireIPv6(t)
			}
			a := newQUICNode(t, family.addr)
			r := newHopReceiver(t, family.addr, family.ipv6)
			to := transport.AddrPortOf(r.pc.LocalAddr())
			if err := a.q.OpenFirewall(to, 3); err != nil {
				t.Fatalf("OpenFirewall: %v", err)
			}
			b, hops, from, err := r.read()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != punchPacket(a.ident.ID()) || hops != 3 {
				t.Fatalf("received %q with hop limit %d, want %q with 3", b, hops, punchPacket(a.ident.ID()))
			}
			if got, want := transport.AddrPortOf(from), a.lns[0].Endpoint().Addr; got != want {
				t.Fatalf("sent from %v, want the QUIC socket %v", got, want)
			}
			if err := a.q.Punch(to); err != nil {
				t.Fatal(err)
			}
			b, hops, _, err = r.read()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != punchPacket(a.ident.ID()) || hops == 3 {
				t.Fatalf("Punch after OpenFirewall: %q with hop limit %d; want the default hop limit", b, hops)
			}
		})
	}
}
