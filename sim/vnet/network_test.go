package vnet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	var delivered []Event
	clk := NewVirtualClock(VirtualEpoch)
	n := New(Config{Clock: clk, Trace: func(e Event) {
		if e.Kind == EventDeliver {
			delivered = append(delivered, e)
		}
	}})
	srv := newServers(t, n, stunAddr)
	srv.conns[stunAddr].host.SetLink(Link{Latency: 11 * time.Millisecond})
	r := mustNAT(t, n, natPublic, FullCone())
	r.SetLink(Link{Latency: 7 * time.Millisecond})
	h := mustHost(t, r, lanHost)
	h.SetLink(Link{Latency: 5 * time.Millisecond})
	c := listen(t, h, 5000)

	start := clk.Now()
	send(t, c, stunAddr, "hello")
	clk.Advance(22 * time.Millisecond)
	if _, ok := tryRecv(srv.conns[stunAddr]); ok {
		t.Fatal("datagram arrived before 5+7+11 ms")
	}
	clk.Advance(time.Millisecond)
	req := mustRecv(t, srv.conns[stunAddr])
	if len(delivered) != 1 || delivered[0].Time.Sub(start) != 23*time.Millisecond {
		t.Fatalf("deliveries traced %v, want one at +23ms", delivered)
	}

	// The way back crosses the same links.
	send(t, srv.conns[stunAddr], req.from, "reply")
	clk.Advance(22 * time.Millisecond)
	if _, ok := tryRecv(c); ok {
		t.Fatal("reply arrived before 23 ms")
	}
	clk.Advance(time.Millisecond)
	mustRecv(t, c)
}

func TestLoss(t *testing.T) {
	for _, tt := range []struct {
		loss     float64
		min, max uint64 // datagrams of 1000 delivered
	}{
		{0, 1000, 1000},
		{0.5, 400, 600},
		{1, 0, 0},
	} {
		t.Run(fmt.Sprint(tt.loss), func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := newServers(t, n, stunAddr)
			h := mustHost(t, n, netip.MustParseAddr("192.0.2.1"))
			h.SetLink(Link{Loss: tt.loss})
			c := listen(t, h, 5000)
			for range 1000 {
				send(t, c, stunAddr, "x")
				clk.RunUntilIdle()
				tryRecv(srv.conns[stunAddr]) // keep the queue empty
			}
			st := n.Stats()
			if st.Delivered < tt.min || st.Delivered > tt.max {
				t.Errorf("delivered %d of 1000, want %d-%d", st.Delivered, tt.min, tt.max)
			}
			if st.Sent != 1000 || st.Delivered+st.Dropped[DropLoss] != 1000 {
				t.Errorf("sent %d, delivered %d, lost %d; want every one of 1000 counted once",
					st.Sent, st.Delivered, st.Dropped[DropLoss])
			}
		})
	}
}

// TestDeterminism runs a lossy exchange through a symmetric NAT twice per seed: the
// same seed gives the same trace, another seed another.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) []string {
		var trace []string
		clk := NewVirtualClock(VirtualEpoch)
		n := New(Config{Clock: clk, Seed: seed, Trace: func(e Event) { trace = append(trace, e.String()) }})
		srv := newServers(t, n, stunAddr, stunAlt, stunOther)
		r := mustNAT(t, n, natPublic, Symmetric())
		r.SetLink(Link{Latency: 3 * time.Millisecond, Loss: 0.3})
		h := mustHost(t, r, lanHost)
		h.SetLink(Link{Latency: time.Millisecond})
		c := listen(t, h, 5000)
		for i := range 30 {
			to := []netip.AddrPort{stunAddr, stunAlt, stunOther}[i%3]
			send(t, c, to, fmt.Sprint("ping ", i))
			clk.Advance(2 * time.Millisecond)
			for _, s := range srv.conns {
				for d, ok := tryRecv(s); ok; d, ok = tryRecv(s) {
					send(t, s, d.from, "pong")
				}
			}
		}
		clk.RunUntilIdle()
		return trace
	}
	a, b, other := run(7), run(7), run(8)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("two runs with seed 7 differ (%d and %d events)", len(a), len(b))
	}
	if slices.Equal(a, other) {
		t.Fatal("seeds 7 and 8 gave the same trace")
	}
	if !slices.ContainsFunc(a, func(s string) bool { return strings.Contains(s, " drop ") && strings.HasSuffix(s, "reason=loss") }) {
		t.Fatal("trace shows no loss, so the test proves little")
	}
}

func TestAddErrors(t *testing.T) {
	n, _ := newTestNet(t, 1)
	r := mustNAT(t, n, natPublic, FullCone())
	mustHost(t, r, lanHost)
	fw := mustNAT(t, n, natPublic2, Firewall())
	mustHost(t, fw, netip.MustParseAddr("203.0.113.50"))

	for _, tt := range []struct {
		name string
		add  func() error
		want error
	}{
		{"public address of a NAT", func() error { _, err := n.AddHost(natPublic); return err }, ErrAddrTaken},
		{"private address twice on a LAN", func() error { _, err := r.AddHost(lanHost); return err }, ErrAddrTaken},
		{"public address behind a firewall", func() error { _, err := n.AddHost(netip.MustParseAddr("203.0.113.50")); return err }, ErrAddrTaken},
		{"IPv6", func() error { _, err := n.AddHost(netip.MustParseAddr("2001:db8::1")); return err }, ErrNotIPv4},
	} {
		if err := tt.add(); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	// The same private address on another LAN is fine.
	r2 := mustNAT(t, n, netip.MustParseAddr("203.0.113.3"), FullCone())
	mustHost(t, r2, lanHost)
}

func TestUnroutableAndClosedPort(t *testing.T) {
	n, clk := newTestNet(t, 1)
	h := mustHost(t, n, netip.MustParseAddr("192.0.2.1"))
	mustHost(t, n, netip.MustParseAddr("192.0.2.2"))
	c := listen(t, h, 5000)
	send(t, c, netip.MustParseAddrPort("192.0.2.99:1"), "nobody")
	send(t, c, netip.MustParseAddrPort("192.0.2.2:1"), "closed port")
	clk.RunUntilIdle()
	st := n.Stats()
	if st.Dropped[DropUnroutable] != 1 || st.Dropped[DropClosedPort] != 1 {
		t.Fatalf("drops %v, want one unroutable and one closed-port", st.Dropped)
	}
}

// A broadcast (limited, or directed to the sender's /24) reaches every other host of
// the sender's LAN that listens on the port, and nothing past the router.
func TestBroadcastStaysOnTheLAN(t *testing.T) {
	for _, to := range []string{"255.255.255.255", "192.168.1.255"} {
		t.Run(to, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := newServers(t, n, stunAddr)
			r := mustNAT(t, n, natPublic, FullCone())
			other := mustNAT(t, n, natPublic2, FullCone())
			sender := listen(t, mustHost(t, r, lanHost), 5483)
			sibling := listen(t, mustHost(t, r, lanHost2), 5483)
			deaf := listen(t, mustHost(t, r, netip.MustParseAddr("192.168.1.4")), 6000) // another port
			away := listen(t, mustHost(t, other, lanHost), 5483)                        // same address, other LAN

			send(t, sender, netip.AddrPortFrom(netip.MustParseAddr(to), 5483), "beacon")
			clk.RunUntilIdle()
			if d := mustRecv(t, sibling); string(d.payload) != "beacon" || d.from != sender.local {
				t.Fatalf("sibling got %q from %v, want \"beacon\" from %v", d.payload, d.from, sender.local)
			}
			for name, c := range map[string]*PacketConn{"the sender": sender, "a host on another port": deaf, "a host of another LAN": away, "the internet": srv.conns[stunAddr]} {
				if d, ok := tryRecv(c); ok {
					t.Errorf("%s got the broadcast: %q from %v", name, d.payload, d.from)
				}
			}
		})
	}
}
