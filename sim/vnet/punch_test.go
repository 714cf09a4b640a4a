package vnet

import (
	"net/netip"
	"testing"
)

// TestHolePunch punches UDP between two hosts behind two NATs: each learns its
// mapping from a STUN-like echo server, then for a few rounds each sends to the
// peer's address, first the mapping the peer learned, then the source of whatever
// reached it from the peer (peer-reflexive). The punch succeeds when each side has
// heard the other.
//
// RFC 4787 theory: two endpoint-independent mappings always meet, whatever the
// filtering. A symmetric NAT's mapping towards the peer is not the one its STUN
// server saw, so the peer's first datagrams go nowhere; the punch still works if
// the peer's NAT lets the symmetric side's new port in (endpoint-independent or
// address-dependent filtering), and fails behind port-dependent filtering.
func TestHolePunch(t *testing.T) {
	kinds := map[string]NATConfig{
		"FullCone":           FullCone(),
		"RestrictedCone":     RestrictedCone(),
		"PortRestrictedCone": PortRestrictedCone(),
		"Symmetric":          Symmetric(),
		"Firewall":           Firewall(),
	}
	for _, tt := range punchOutcomes {
		// Both orders: which side writes first must not matter.
		for _, pair := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
				if got := holePunch(t, kinds[pair[0]], kinds[pair[1]]); got != tt.ok {
					t.Fatalf("punch succeeded: %v, want %v", got, tt.ok)
				}
			})
		}
	}
}

// holePunch sets up two hosts behind NATs a and b and reports whether a punch
// between them succeeds.
func holePunch(t *testing.T, a, b NATConfig) bool {
	t.Helper()
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)

	type side struct {
		conn  *PacketConn
		peer  netip.AddrPort // where to send: the peer's mapping, then its source
		heard bool
	}
	newSide := func(public netip.Addr, cfg NATConfig) *side {
		r := mustNAT(t, n, public, cfg)
		inside := lanHost // the same private address on both LANs
		if cfg.FirewallOnly {
			ip := public.As4()
			ip[3] += 100
			inside = netip.AddrFrom4(ip) // routable behind a firewall
		}
		return &side{conn: listen(t, mustHost(t, r, inside), 5000)}
	}
	sa, sb := newSide(natPublic, a), newSide(natPublic2, b)
	sb.peer = stunLookup(t, clk, sa.conn, srv.conns[stunAddr])
	sa.peer = stunLookup(t, clk, sb.conn, srv.conns[stunAddr])

	for range 3 {
		for _, s := range []*side{sa, sb} {
			for d, ok := tryRecv(s.conn); ok; d, ok = tryRecv(s.conn) {
				s.heard = true
				s.peer = d.from
			}
			send(t, s.conn, s.peer, "punch")
		}
		clk.RunUntilIdle()
	}
	for _, s := range []*side{sa, sb} {
		if _, ok := tryRecv(s.conn); ok {
			s.heard = true
		}
	}
	return sa.heard && sb.heard
}
