package vnet

import (
	"net"
	"net/netip"
	"testing"
)

var (
	stunAddr   = netip.MustParseAddrPort("198.51.100.1:3478")
	stunAlt    = netip.MustParseAddrPort("198.51.100.1:3479") // same server, other port
	stunOther  = netip.MustParseAddrPort("198.51.100.2:3478") // another server address
	natPublic  = netip.MustParseAddr("203.0.113.1")
	natPublic2 = netip.MustParseAddr("203.0.113.2")
	lanHost    = netip.MustParseAddr("192.168.1.2")
	lanHost2   = netip.MustParseAddr("192.168.1.3")
)

// newTestNet returns a network on a fresh VirtualClock.
func newTestNet(t *testing.T, seed uint64) (*Network, *VirtualClock) {
	t.Helper()
	clk := NewVirtualClock(VirtualEpoch)
	return New(Config{Clock: clk, Seed: seed}), clk
}

type adder interface {
	AddHost(netip.Addr) (*Host, error)
}

func mustHost(t *testing.T, on adder, addr netip.Addr) *Host {
	t.Helper()
	h, err := on.AddHost(addr)
	if err != nil {
		t.Fatalf("adding host %s: %v", addr, err)
	}
	return h
}

func mustNAT(t *testing.T, n *Network, addr netip.Addr, cfg NATConfig) *Router {
	t.Helper()
	r, err := n.AddNAT(addr, cfg)
	if err != nil {
		t.Fatalf("adding NAT %s: %v", addr, err)
	}
	return r
}

func listen(t *testing.T, h *Host, port int) *PacketConn {
	t.Helper()
	c, err := h.ListenPacket(port)
	if err != nil {
		t.Fatalf("listening on %s port %d: %v", h.Addr(), port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *PacketConn, to netip.AddrPort, payload string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(payload), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatalf("writing from %v to %v: %v", c.LocalAddr(), to, err)
	}
}

// tryRecv takes one queued datagram without blocking.
func tryRecv(c *PacketConn) (datagram, bool) {
	select {
	case d := <-c.queue:
		return d, true
	default:
		return datagram{}, false
	}
}

func mustRecv(t *testing.T, c *PacketConn) datagram {
	t.Helper()
	d, ok := tryRecv(c)
	if !ok {
		t.Fatalf("%v received nothing", c.LocalAddr())
	}
	return d
}

// publicServer is a host on the internet with sockets on the ports of its address.
type publicServer struct {
	conns map[netip.AddrPort]*PacketConn
}

func newServers(t *testing.T, n *Network, addrs ...netip.AddrPort) publicServer {
	t.Helper()
	s := publicServer{conns: map[netip.AddrPort]*PacketConn{}}
	hosts := map[netip.Addr]*Host{}
	for _, a := range addrs {
		h := hosts[a.Addr()]
		if h == nil {
			h = mustHost(t, n, a.Addr())
			hosts[a.Addr()] = h
		}
		s.conns[a] = listen(t, h, int(a.Port()))
	}
	return s
}

// stunLookup asks the echo server at server for c's mapped address, as a STUN
// binding request would: the server answers with the source it saw.
func stunLookup(t *testing.T, clk *VirtualClock, c, server *PacketConn) netip.AddrPort {
	t.Helper()
	send(t, c, server.local, "binding request")
	clk.RunUntilIdle()
	req := mustRecv(t, server)
	send(t, server, req.from, req.from.String())
	clk.RunUntilIdle()
	resp := mustRecv(t, c)
	return netip.MustParseAddrPort(string(resp.payload))
}

// punchOutcomes is the hole-punch theory for the presets, both orders, UDP and
// TCP alike: both mappings endpoint-independent (a firewall counts) always punch; a
// symmetric side gets through only to a peer whose filtering ignores ports.
var punchOutcomes = []struct {
	a, b string
	ok   bool
}{
	{"FullCone", "FullCone", true},
	{"FullCone", "RestrictedCone", true},
	{"FullCone", "PortRestrictedCone", true},
	{"FullCone", "Symmetric", true},
	{"FullCone", "Firewall", true},
	{"RestrictedCone", "RestrictedCone", true},
	{"RestrictedCone", "PortRestrictedCone", true},
	{"RestrictedCone", "Symmetric", true},
	{"RestrictedCone", "Firewall", true},
	{"PortRestrictedCone", "PortRestrictedCone", true},
	{"PortRestrictedCone", "Symmetric", false},
	{"PortRestrictedCone", "Firewall", true},
	{"Symmetric", "Symmetric", false},
	{"Symmetric", "Firewall", false},
	{"Firewall", "Firewall", true},
}
