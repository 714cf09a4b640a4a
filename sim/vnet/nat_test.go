package vnet

import (
	"net/netip"
	"testing"
	"time"
)

// TestNATBehaviour runs the RFC 5780 style checks on each kind of NAT: a host sends
// to S1 (address A1, port P1) and gets the reply; S2 (another address) and S1's other
// port send to the mapping; then the host sends to S2 and to S1's other port, and the
// mappings the servers see are compared.
func TestNATBehaviour(t *testing.T) {
	tests := []struct {
		name string
		cfg  NATConfig
		// Mapping: whether the mapping seen by S1 equals the one seen from S1's
		// other port, and from S2.
		sameForOtherPort, sameForOtherAddr bool
		// Filtering: whether S2 and S1's other port get in through the mapping S1 saw.
		inFromOtherAddr, inFromOtherPort bool
	}{
		{"FullCone", FullCone(), true, true, true, true},
		{"RestrictedCone", RestrictedCone(), true, true, false, true},
		{"PortRestrictedCone", PortRestrictedCone(), true, true, false, false},
		{"Symmetric", Symmetric(), false, false, false, false},
		{"AddressDependentMapping", NATConfig{Mapping: AddressDependent, Filtering: AddressDependent}, true, false, false, true},
		{"Firewall", Firewall(), true, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := newServers(t, n, stunAddr, stunAlt, stunOther)
			r := mustNAT(t, n, natPublic, tt.cfg)
			inside := lanHost
			if tt.cfg.FirewallOnly {
				inside = netip.MustParseAddr("203.0.113.10") // routable behind a firewall
			}
			c := listen(t, mustHost(t, r, inside), 5000)

			send(t, c, stunAddr, "hello")
			clk.RunUntilIdle()
			m1 := mustRecv(t, srv.conns[stunAddr]).from
			if tt.cfg.FirewallOnly {
				if m1 != c.local {
					t.Fatalf("firewall translated %v to %v", c.local, m1)
				}
			} else if m1.Addr() != natPublic {
				t.Fatalf("S1 saw %v, want the NAT's address %v", m1, natPublic)
			}
			send(t, srv.conns[stunAddr], m1, "reply")
			clk.RunUntilIdle()
			if d := mustRecv(t, c); d.from != stunAddr {
				t.Fatalf("reply came from %v, want %v", d.from, stunAddr)
			}

			// Filtering: before the host has sent to anyone but S1:P1.
			send(t, srv.conns[stunOther], m1, "from S2")
			send(t, srv.conns[stunAlt], m1, "from S1's other port")
			clk.RunUntilIdle()
			var fromOtherAddr, fromOtherPort bool
			for d, ok := tryRecv(c); ok; d, ok = tryRecv(c) {
				switch d.from {
				case stunOther:
					fromOtherAddr = true
				case stunAlt:
					fromOtherPort = true
				}
			}
			if fromOtherAddr != tt.inFromOtherAddr || fromOtherPort != tt.inFromOtherPort {
				t.Errorf("filtering: S2 got in %v, S1's other port got in %v; want %v, %v",
					fromOtherAddr, fromOtherPort, tt.inFromOtherAddr, tt.inFromOtherPort)
			}

			// Mapping.
			send(t, c, stunAlt, "to S1's other port")
			send(t, c, stunOther, "to S2")
			clk.RunUntilIdle()
			mAlt := mustRecv(t, srv.conns[stunAlt]).from
			mOther := mustRecv(t, srv.conns[stunOther]).from
			if (mAlt == m1) != tt.sameForOtherPort || (mOther == m1) != tt.sameForOtherAddr {
				t.Errorf("mapping: S1 saw %v, S1's other port %v, S2 %v; want same for other port %v, for other address %v",
					m1, mAlt, mOther, tt.sameForOtherPort, tt.sameForOtherAddr)
			}
		})
	}
}

func TestUnsolicitedInboundDropped(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	r := mustNAT(t, n, natPublic, FullCone())
	listen(t, mustHost(t, r, lanHost), 5000)

	send(t, srv.conns[stunAddr], netip.AddrPortFrom(natPublic, 5000), "unsolicited")
	clk.RunUntilIdle()
	if got := n.Stats().Dropped[DropNoMapping]; got != 1 {
		t.Fatalf("dropped for no mapping: %d, want 1", got)
	}
}

func TestPortAssignment(t *testing.T) {
	t.Run("Preserving", func(t *testing.T) {
		n, clk := newTestNet(t, 1)
		srv := newServers(t, n, stunAddr)
		r := mustNAT(t, n, natPublic, NATConfig{PortAssignment: Preserving})
		c1 := listen(t, mustHost(t, r, lanHost), 5000)
		c2 := listen(t, mustHost(t, r, lanHost2), 5000)
		if m := stunLookup(t, clk, c1, srv.conns[stunAddr]); m.Port() != 5000 {
			t.Errorf("first host's port 5000 mapped to %d, want 5000", m.Port())
		}
		if m := stunLookup(t, clk, c2, srv.conns[stunAddr]); m.Port() != 5001 {
			t.Errorf("second host's port 5000 (taken) mapped to %d, want the next free, 5001", m.Port())
		}
	})
	t.Run("Sequential", func(t *testing.T) {
		n, clk := newTestNet(t, 1)
		srv := newServers(t, n, stunAddr, stunAlt, stunOther)
		r := mustNAT(t, n, natPublic, NATConfig{Mapping: AddressAndPortDependent, PortAssignment: Sequential})
		c := listen(t, mustHost(t, r, lanHost), 5000)
		var ports []uint16
		for _, s := range []netip.AddrPort{stunAddr, stunAlt, stunOther} {
			ports = append(ports, stunLookup(t, clk, c, srv.conns[s]).Port())
		}
		for i := 1; i < len(ports); i++ {
			if ports[i] != ports[i-1]+1 {
				t.Fatalf("sequential ports %v, want each one more than the last", ports)
			}
		}
	})
	t.Run("Random", func(t *testing.T) {
		mapped := func(seed uint64) []uint16 {
			n, clk := newTestNet(t, seed)
			srv := newServers(t, n, stunAddr, stunAlt, stunOther)
			r := mustNAT(t, n, natPublic, Symmetric())
			c := listen(t, mustHost(t, r, lanHost), 5000)
			var ports []uint16
			for _, s := range []netip.AddrPort{stunAddr, stunAlt, stunOther} {
				p := stunLookup(t, clk, c, srv.conns[s]).Port()
				if p < 1024 {
					t.Errorf("random port %d below 1024", p)
				}
				ports = append(ports, p)
			}
			return ports
		}
		a, b, other := mapped(42), mapped(42), mapped(43)
		if !equalPorts(a, b) {
			t.Errorf("seed 42 gave %v then %v, want the same", a, b)
		}
		if equalPorts(a, other) {
			t.Errorf("seeds 42 and 43 both gave %v, want different ports", a)
		}
		if a[0] == 5000 && a[1] == 5001 {
			t.Errorf("random ports %v look preserved", a)
		}
	})
}

func equalPorts(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMappingTimeout(t *testing.T) {
	const timeout = 30 * time.Second
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	s := srv.conns[stunAddr]
	cfg := PortRestrictedCone()
	cfg.PortAssignment = Random
	cfg.MappingTimeout = timeout
	r := mustNAT(t, n, natPublic, cfg)
	c := listen(t, mustHost(t, r, lanHost), 5000)

	m1 := stunLookup(t, clk, c, s)
	clk.Advance(timeout - time.Second)
	send(t, s, m1, "just in time")
	clk.RunUntilIdle()
	mustRecv(t, c)

	clk.Advance(time.Second) // timeout of silence since the last outbound datagram
	send(t, s, m1, "too late")
	clk.RunUntilIdle()
	if _, ok := tryRecv(c); ok {
		t.Fatal("inbound datagram got through an expired mapping")
	}
	if got := n.Stats().Dropped[DropNoMapping]; got != 1 {
		t.Fatalf("dropped for no mapping: %d, want 1", got)
	}
	if got := r.Mappings(); got != 0 {
		t.Fatalf("router holds %d mappings after the timeout, want 0", got)
	}
	m2 := stunLookup(t, clk, c, s)
	if m2 == m1 {
		t.Fatalf("fresh random mapping %v equals the expired one", m2)
	}
}

func TestMappingRefresh(t *testing.T) {
	const timeout = 30 * time.Second
	for _, inboundRefresh := range []bool{false, true} {
		name := map[bool]string{false: "OutboundOnly", true: "InboundToo"}[inboundRefresh]
		t.Run(name, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := newServers(t, n, stunAddr)
			s := srv.conns[stunAddr]
			cfg := FullCone()
			cfg.MappingTimeout = timeout
			cfg.InboundRefresh = inboundRefresh
			r := mustNAT(t, n, natPublic, cfg)
			c := listen(t, mustHost(t, r, lanHost), 5000)
			m := stunLookup(t, clk, c, s)

			clk.Advance(20 * time.Second)
			send(t, s, m, "keepalive from outside")
			clk.RunUntilIdle()
			mustRecv(t, c)
			clk.Advance(20 * time.Second) // 40s after the last outbound datagram
			send(t, s, m, "after 40s")
			clk.RunUntilIdle()
			if _, ok := tryRecv(c); ok != inboundRefresh {
				t.Fatalf("datagram 20s after an inbound one arrived: %v, want %v", ok, inboundRefresh)
			}
		})
	}
}

func TestHairpinning(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "Off", true: "On"}[on], func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := newServers(t, n, stunAddr)
			cfg := FullCone()
			cfg.Hairpinning = on
			r := mustNAT(t, n, natPublic, cfg)
			c1 := listen(t, mustHost(t, r, lanHost), 5000)
			c2 := listen(t, mustHost(t, r, lanHost2), 6000)
			m1 := stunLookup(t, clk, c1, srv.conns[stunAddr])
			m2 := stunLookup(t, clk, c2, srv.conns[stunAddr])

			send(t, c1, m2, "via the public address")
			clk.RunUntilIdle()
			d, ok := tryRecv(c2)
			if ok != on {
				t.Fatalf("hairpinned datagram arrived: %v, want %v", ok, on)
			}
			if on && d.from != m1 {
				t.Fatalf("hairpinned datagram came from %v, want the sender's mapping %v", d.from, m1)
			}
			if got, want := n.Stats().Dropped[DropNoHairpin], map[bool]uint64{false: 1, true: 0}[on]; got != want {
				t.Fatalf("dropped for no hairpinning: %d, want %d", got, want)
			}
		})
	}
}

func TestCGNAT(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	s := srv.conns[stunAddr]
	carrier, home, err := n.AddCGNAT(natPublic, netip.MustParseAddr("100.64.0.2"), PortRestrictedCone(), PortRestrictedCone())
	if err != nil {
		t.Fatal(err)
	}
	c := listen(t, mustHost(t, home, lanHost), 5000)

	send(t, c, stunAddr, "hello")
	clk.RunUntilIdle()
	req := mustRecv(t, s)
	if req.from.Addr() != carrier.Addr() {
		t.Fatalf("server saw %v, want the carrier NAT's address %v", req.from, carrier.Addr())
	}
	send(t, s, req.from, "reply")
	clk.RunUntilIdle()
	if d := mustRecv(t, c); d.from != stunAddr || string(d.payload) != "reply" {
		t.Fatalf("host got %q from %v, want %q from %v", d.payload, d.from, "reply", stunAddr)
	}
	if carrier.Mappings() != 1 || home.Mappings() != 1 {
		t.Fatalf("mappings: carrier %d, home %d; want 1 each", carrier.Mappings(), home.Mappings())
	}
}
