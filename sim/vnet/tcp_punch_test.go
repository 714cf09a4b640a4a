package vnet

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

// The punch tests' hosts listen on punchPort and learn their mapping from an echo
// server, as crust does with STUN over TCP.
const punchPort = 5000

var echoAddr = netip.MustParseAddrPort("198.51.100.1:3478")

// punchSide is one host of a TCP hole punch.
type punchSide struct {
	host   *Host
	ln     *Listener
	mapped netip.AddrPort // its listen port as the echo server saw it
	dial   *StreamConn
}

func newPunchSide(t *testing.T, n *Network, public netip.Addr, cfg NATConfig) *punchSide {
	t.Helper()
	r := mustNAT(t, n, public, cfg)
	r.SetLink(Link{Latency: 10 * time.Millisecond})
	h := mustHost(t, r, insideAddr(public, cfg))
	return &punchSide{host: h, ln: mustListen(t, h, punchPort)}
}

// learnMapping dials the echo server from the listen port; the server writes back
// the endpoint it sees, and both ends close.
func (s *punchSide) learnMapping(t *testing.T, clk *VirtualClock, echo *Listener) {
	t.Helper()
	c := dialStart(t, s.host, punchPort, echoAddr)
	clk.RunUntilIdle()
	mustConnected(t, c)
	e := mustAccept(t, echo)
	write(t, e, e.RemoteAddr().String())
	e.CloseWrite()
	clk.RunUntilIdle()
	got, err := readNow(c)
	if err == nil {
		t.Fatalf("echo server did not close")
	}
	s.mapped = netip.MustParseAddrPort(got)
	c.Close()
	e.Close()
	clk.RunUntilIdle()
}

// conn returns the side's one connection from the punch, dialled or accepted; nil if
// none. More than one fails the test.
func (s *punchSide) conn(t *testing.T) *StreamConn {
	t.Helper()
	var got []*StreamConn
	if done, err := dialState(s.dial); done && err == nil {
		got = append(got, s.dial)
	}
	for c := acceptNow(s.ln); c != nil; c = acceptNow(s.ln) {
		t.Cleanup(func() { c.Close() })
		got = append(got, c)
	}
	if len(got) > 1 {
		t.Fatalf("%v has %d connections, want at most one", s.host, len(got))
	}
	if len(got) == 0 {
		return nil
	}
	return got[0]
}

// punched reports whether each side has a connection to the other, checking that
// bytes flow both ways on it.
func punched(t *testing.T, clk *VirtualClock, a, b *punchSide) bool {
	t.Helper()
	ca, cb := a.conn(t), b.conn(t)
	if ca == nil || cb == nil {
		if ca != nil || cb != nil {
			t.Fatalf("one-sided punch: %v has %v, %v has %v", a.host, ca, b.host, cb)
		}
		return false
	}
	write(t, ca, "from a")
	write(t, cb, "from b")
	clk.RunUntilIdle()
	expectRead(t, cb, "from a", nil)
	expectRead(t, ca, "from b", nil)
	return true
}

// tcpPunch sets up hosts behind routers a and b, lets them learn their mappings, and
// makes both DialFrom their listen port to the peer's mapping at the same instant.
func tcpPunch(t *testing.T, seed uint64, a, b NATConfig) (*VirtualClock, *punchSide, *punchSide) {
	t.Helper()
	n, clk := newTestNet(t, seed)
	echo := mustListen(t, mustHost(t, n, echoAddr.Addr()), int(echoAddr.Port()))
	sa, sb := newPunchSide(t, n, natPublic, a), newPunchSide(t, n, natPublic2, b)
	sa.learnMapping(t, clk, echo)
	sb.learnMapping(t, clk, echo)
	sa.dial = dialStart(t, sa.host, punchPort, sb.mapped)
	sb.dial = dialStart(t, sb.host, punchPort, sa.mapped)
	clk.RunUntilIdle()
	return clk, sa, sb
}

// TestTCPHolePunch punches TCP by simultaneous open between hosts behind each pair
// of router kinds, in both orders.
//
// Two endpoint-independent mappings (a firewall's counts as one) always meet: each
// SYN passes the peer's router, whose inside host has just sent a SYN to that very
// endpoint, and the two connecting sockets make one connection (RFC 793). A
// symmetric NAT's SYN leaves from a new, random port: the peer's router only lets it
// in if it does not filter on the port (full cone, restricted cone), and then the
// peer's listener accepts it; the peer's own SYN, to the port the echo server saw,
// never gets through. So the TCP table is the UDP one.
func TestTCPHolePunch(t *testing.T) {
	kinds := map[string]NATConfig{}
	for _, k := range natKinds {
		kinds[k.name] = k.cfg
	}
	for _, tt := range punchOutcomes {
		for _, pair := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
				clk, sa, sb := tcpPunch(t, 1, kinds[pair[0]], kinds[pair[1]])
				if got := punched(t, clk, sa, sb); got != tt.ok {
					t.Fatalf("punch succeeded: %v, want %v", got, tt.ok)
				}
				// Between endpoint-independent mappings both dials succeed: a
				// simultaneous open, no listener involved.
				if tt.ok && pair[0] != "Symmetric" && pair[1] != "Symmetric" {
					mustConnected(t, sa.dial)
					mustConnected(t, sb.dial)
				}
			})
		}
	}
}

// TestTCPPunchEarlySYN: one side's SYN reaches the peer's router well before the peer
// dials. A dropping router loses it, and the early side's retransmitted SYN, or the
// peer's SYN meeting it, makes the connection; a rejecting router answers with an
// RST, the early side's dial is refused, and the peer's later SYN reaches the early
// side's listener.
func TestTCPPunchEarlySYN(t *testing.T) {
	for _, reject := range []bool{false, true} {
		name := "Drop"
		if reject {
			name = "Reject"
		}
		t.Run(name, func(t *testing.T) {
			late := PortRestrictedCone()
			if reject {
				late.TCPUnsolicited = RejectSYN
			}
			n, clk := newTestNet(t, 1)
			echo := mustListen(t, mustHost(t, n, echoAddr.Addr()), int(echoAddr.Port()))
			early, slow := newPunchSide(t, n, natPublic, PortRestrictedCone()), newPunchSide(t, n, natPublic2, late)
			early.learnMapping(t, clk, echo)
			slow.learnMapping(t, clk, echo)

			early.dial = dialStart(t, early.host, punchPort, slow.mapped)
			clk.Advance(2500 * time.Millisecond)
			done, err := dialState(early.dial)
			if reject {
				if !done || !isRefused(err) {
					t.Fatalf("early dial through a rejecting NAT: done %v, %v; want ECONNREFUSED", done, err)
				}
			} else if done {
				t.Fatalf("early dial through a dropping NAT ended: %v; want it still retransmitting", err)
			}
			want := DropUnsolicitedSYN
			if reject {
				want = DropRejectedSYN
			}
			if got := n.Stats().Dropped[want]; got == 0 {
				t.Fatalf("the early SYN was not dropped as %q: %v", want, n.Stats().Dropped)
			}

			slow.dial = dialStart(t, slow.host, punchPort, early.mapped)
			clk.RunUntilIdle()
			if !punched(t, clk, early, slow) {
				t.Fatal("no connection")
			}
			mustConnected(t, slow.dial)
			if !reject {
				mustConnected(t, early.dial)
			}
		})
	}
}

// TestSimultaneousOpen: two public hosts dial each other from their listen ports at
// the same instant; each ends with one connection, from its dial.
func TestSimultaneousOpen(t *testing.T) {
	n, clk := newTestNet(t, 1)
	a, b := mustHost(t, n, webAddr.Addr()), mustHost(t, n, outsider)
	a.SetLink(Link{Latency: 5 * time.Millisecond})
	b.SetLink(Link{Latency: 7 * time.Millisecond})
	la, lb := mustListen(t, a, punchPort), mustListen(t, b, punchPort)
	ca := dialStart(t, a, punchPort, netip.AddrPortFrom(b.Addr(), punchPort))
	cb := dialStart(t, b, punchPort, netip.AddrPortFrom(a.Addr(), punchPort))
	clk.RunUntilIdle()
	mustConnected(t, ca)
	mustConnected(t, cb)
	if acceptNow(la) != nil || acceptNow(lb) != nil {
		t.Fatal("a listener accepted a connection too")
	}
	if len(a.streams) != 1 || len(b.streams) != 1 {
		t.Fatalf("connections: %d and %d, want one each", len(a.streams), len(b.streams))
	}
	write(t, ca, "hi b")
	write(t, cb, "hi a")
	clk.RunUntilIdle()
	expectRead(t, cb, "hi b", nil)
	expectRead(t, ca, "hi a", nil)
	if st := n.Stats(); len(st.Dropped) != 0 {
		t.Fatalf("drops: %v", st.Dropped)
	}
}

// TestStreamDeterminism runs a punch with an early SYN, data and closes twice with
// the same seed: the traces are identical. Another seed moves the symmetric NAT's
// ports.
func TestStreamDeterminism(t *testing.T) {
	run := func(seed uint64) []string {
		var lines []string
		clk := NewVirtualClock(VirtualEpoch)
		n := New(Config{Clock: clk, Seed: seed, Trace: func(e Event) { lines = append(lines, e.String()) }})
		echo := mustListen(t, mustHost(t, n, echoAddr.Addr()), int(echoAddr.Port()))
		sa, sb := newPunchSide(t, n, natPublic, Symmetric()), newPunchSide(t, n, natPublic2, FullCone())
		sa.learnMapping(t, clk, echo)
		sb.learnMapping(t, clk, echo)
		sb.dial = dialStart(t, sb.host, punchPort, sa.mapped)
		clk.Advance(1500 * time.Millisecond)
		sa.dial = dialStart(t, sa.host, punchPort, sb.mapped)
		clk.RunUntilIdle()
		if !punched(t, clk, sa, sb) {
			t.Fatal("no connection")
		}
		sa.dial.Close()
		clk.RunUntilIdle()
		return lines
	}
	first, second := run(7), run(7)
	if len(first) == 0 || !slices.Equal(first, second) {
		t.Fatalf("traces differ:\n%v\n%v", first, second)
	}
	if slices.Equal(first, run(8)) {
		t.Fatal("seeds 7 and 8 gave the same trace")
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
