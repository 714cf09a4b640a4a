package vnet

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// A static UDP mapping on a port-restricted NAT lets in a host that was never sent
// to, and the inside endpoint's datagrams, to it and to anyone else, leave through
// the mapped port.
func TestPortMappingUDP(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	c := listen(t, mustHost(t, r, lanHost), 5000)
	out := listen(t, mustHost(t, n, outsider), 7000)
	mapped := netip.AddrPortFrom(natPublic, 6000)

	send(t, out, mapped, "before")
	clk.RunUntilIdle()
	if _, ok := tryRecv(c); ok {
		t.Fatal("a datagram got in before the port was mapped")
	}

	if err := r.AddPortMapping("udp", 6000, c.local, 0); err != nil {
		t.Fatal(err)
	}
	send(t, out, mapped, "in")
	clk.RunUntilIdle()
	if d := mustRecv(t, c); string(d.payload) != "in" || d.from != out.local {
		t.Fatalf("inside got %q from %v, want \"in\" from %v", d.payload, d.from, out.local)
	}
	send(t, c, out.local, "reply")
	send(t, c, stunAddr, "to another")
	clk.RunUntilIdle()
	if d := mustRecv(t, out); d.from != mapped {
		t.Fatalf("the reply came from %v, want the mapped port %v", d.from, mapped)
	}
	if d := mustRecv(t, srv.conns[stunAddr]); d.from != mapped {
		t.Fatalf("a datagram to another host came from %v, want the mapped port %v", d.from, mapped)
	}
	if got := r.Mappings(); got != 0 {
		t.Fatalf("%d dynamic mappings, want none: the static one carries the endpoint's traffic", got)
	}
	want := []PortMapping{{Proto: "udp", External: 6000, Internal: c.local}}
	if got := r.PortMappings(); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("PortMappings() = %v, want %v", got, want)
	}
}

// A TCP connection from outside reaches a listener behind a port-restricted NAT
// through a static mapping, and carries bytes both ways.
func TestPortMappingTCP(t *testing.T) {
	n, clk := newTestNet(t, 1)
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	h := mustHost(t, r, lanHost)
	ln := mustListen(t, h, 5000)
	x := mustHost(t, n, outsider)
	mapped := netip.AddrPortFrom(natPublic, 8080)

	c := dialStart(t, x, 0, mapped)
	clk.RunUntilIdle()
	if done, err := dialState(c); done && err == nil {
		t.Fatal("connected before the port was mapped")
	}
	c.Close()

	if err := r.AddPortMapping("tcp", 8080, netip.AddrPortFrom(lanHost, 5000), time.Hour); err != nil {
		t.Fatal(err)
	}
	c = dialStart(t, x, 0, mapped)
	clk.RunUntilIdle()
	mustConnected(t, c)
	s := mustAccept(t, ln)
	if s.remote != c.local {
		t.Fatalf("the inside listener sees %v, want the dialler %v", s.remote, c.local)
	}
	write(t, c, "ping")
	write(t, s, "pong")
	clk.RunUntilIdle()
	expectRead(t, s, "ping", nil)
	expectRead(t, c, "pong", nil)
}

// A mapping with a lease stops forwarding when the lease ends, traffic or not; the
// endpoint's datagrams then make a dynamic mapping as before.
func TestPortMappingExpiry(t *testing.T) {
	n, clk := newTestNet(t, 1)
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	c := listen(t, mustHost(t, r, lanHost), 5000)
	out := listen(t, mustHost(t, n, outsider), 7000)
	mapped := netip.AddrPortFrom(natPublic, 6000)
	if err := r.AddPortMapping("udp", 6000, c.local, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pm, ok := r.PortMapping("udp", 6000)
	if !ok || !pm.Expires.Equal(VirtualEpoch.Add(30*time.Second)) {
		t.Fatalf("PortMapping = %v, %v; want one expiring at +30s", pm, ok)
	}

	clk.Advance(29 * time.Second)
	send(t, out, mapped, "in time")
	clk.RunUntilIdle()
	mustRecv(t, c)

	clk.Advance(time.Second)
	send(t, out, mapped, "too late")
	clk.RunUntilIdle()
	if d, ok := tryRecv(c); ok {
		t.Fatalf("%q got in after the lease ended", d.payload)
	}
	if got := n.Stats().Dropped[DropNoMapping]; got != 1 {
		t.Fatalf("%d datagrams dropped for no mapping, want 1", got)
	}
	if _, ok := r.PortMapping("udp", 6000); ok {
		t.Fatal("PortMapping still reports the expired mapping")
	}
	send(t, c, out.local, "out")
	clk.RunUntilIdle()
	if d := mustRecv(t, out); d.from != netip.AddrPortFrom(natPublic, 5000) {
		t.Fatalf("after expiry the inside's datagram came from %v, want its dynamic (preserved) port 5000", d.from)
	}
}

// A port another inside endpoint holds, dynamically or by a static mapping, cannot
// be mapped; mapping a port again for the same endpoint renews it; the endpoint's
// own dynamic mapping on the port becomes the static one; and a dynamic mapping
// never takes a mapped port.
func TestPortMappingConflict(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	a := listen(t, mustHost(t, r, lanHost), 5000)
	b := listen(t, mustHost(t, r, lanHost2), 7000)

	if got := stunLookup(t, clk, a, srv.conns[stunAddr]); got.Port() != 5000 {
		t.Fatalf("a's dynamic mapping is %v, want port 5000", got)
	}
	if err := r.AddPortMapping("udp", 5000, b.local, 0); !errors.Is(err, ErrPortMappingConflict) {
		t.Fatalf("mapping a's dynamic port to b: %v, want ErrPortMappingConflict", err)
	}
	if err := r.AddPortMapping("udp", 5000, a.local, 0); err != nil {
		t.Fatalf("mapping a's own dynamic port to a: %v", err)
	}
	if got := r.Mappings(); got != 0 {
		t.Fatalf("%d dynamic mappings left, want the static one in their place", got)
	}

	if err := r.AddPortMapping("udp", 7000, a.local, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPortMapping("udp", 7000, b.local, 0); !errors.Is(err, ErrPortMappingConflict) {
		t.Fatalf("mapping a's static port to b: %v, want ErrPortMappingConflict", err)
	}
	clk.Advance(50 * time.Second)
	if err := r.AddPortMapping("udp", 7000, a.local, time.Minute); err != nil {
		t.Fatalf("renewing: %v", err)
	}
	clk.Advance(50 * time.Second)
	if _, ok := r.PortMapping("udp", 7000); !ok {
		t.Fatal("the renewed mapping expired with its first lease")
	}
	if got := stunLookup(t, clk, b, srv.conns[stunAddr]); got.Port() == 7000 {
		t.Fatal("b's dynamic mapping took the mapped port 7000")
	}
	if err := r.AddPortMapping("tcp", 7000, b.local, 0); err != nil {
		t.Fatalf("TCP port 7000 is not UDP port 7000: %v", err)
	}
}

// Deleting a mapping closes the port; deleting it again is ErrNoPortMapping. A
// firewall and bad arguments are refused.
func TestPortMappingDelete(t *testing.T) {
	n, clk := newTestNet(t, 1)
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	c := listen(t, mustHost(t, r, lanHost), 5000)
	out := listen(t, mustHost(t, n, outsider), 7000)
	mapped := netip.AddrPortFrom(natPublic, 6000)
	if err := r.AddPortMapping("udp", 6000, c.local, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.DeletePortMapping("udp", 6000); err != nil {
		t.Fatal(err)
	}
	send(t, out, mapped, "after delete")
	clk.RunUntilIdle()
	if _, ok := tryRecv(c); ok {
		t.Fatal("a datagram got in through a deleted mapping")
	}
	if err := r.DeletePortMapping("udp", 6000); !errors.Is(err, ErrNoPortMapping) {
		t.Fatalf("deleting twice: %v, want ErrNoPortMapping", err)
	}
	if got := r.PortMappings(); len(got) != 0 {
		t.Fatalf("PortMappings() = %v after the delete", got)
	}

	fw := mustNAT(t, n, natPublic2, Firewall())
	for _, tc := range []struct {
		name     string
		r        *Router
		proto    string
		external uint16
		internal netip.AddrPort
		lease    time.Duration
	}{
		{"firewall", fw, "udp", 6000, netip.MustParseAddrPort("203.0.113.102:5000"), 0},
		{"protocol", r, "sctp", 6000, c.local, 0},
		{"external port 0", r, "udp", 0, c.local, 0},
		{"internal port 0", r, "udp", 6000, netip.AddrPortFrom(lanHost, 0), 0},
		{"IPv6", r, "udp", 6000, netip.MustParseAddrPort("[fd00::1]:5000"), 0},
		{"negative lease", r, "udp", 6000, c.local, -time.Second},
	} {
		if err := tc.r.AddPortMapping(tc.proto, tc.external, tc.internal, tc.lease); err == nil {
			t.Errorf("%s: AddPortMapping succeeded", tc.name)
		}
	}
}
