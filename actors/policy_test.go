package actors

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/crust-p2p/crust/transport/identity"
)

func mustID(t testing.TB) identity.NodeID {
	t.Helper()
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return ident.ID()
}

func TestPolicyAllowedAddr(t *testing.T) {
	p := NewPolicy(nil, nil,
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8:1::/48"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"), // stored as 198.51.100.0/24
		netip.MustParsePrefix("203.0.113.9/32"),
	)
	tests := []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", false},
		{"192.0.2.255", false},
		{"192.0.3.1", true},
		{"::ffff:192.0.2.77", false}, // IPv4-mapped: counts as 192.0.2.77
		{"::ffff:192.0.3.1", true},
		{"198.51.100.4", false},
		{"::ffff:198.51.100.4", false},
		{"203.0.113.9", false},
		{"203.0.113.10", true},
		{"2001:db8:1::1", false},
		{"2001:db8:1:ffff::1", false},
		{"2001:db8:2::1", true},
		{"::1", true},
		{"127.0.0.1", true},
	}
	for _, tt := range tests {
		if got := p.AllowedAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("AllowedAddr(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestPolicyAllowedAddrEmptyAndNil(t *testing.T) {
	var nilPolicy *Policy
	empty := NewPolicy(nil, nil)
	for _, a := range []string{"192.0.2.1", "::1", "::ffff:10.0.0.1"} {
		addr := netip.MustParseAddr(a)
		if !nilPolicy.AllowedAddr(addr) {
			t.Errorf("nil Policy refuses %s", a)
		}
		if !empty.AllowedAddr(addr) {
			t.Errorf("empty Policy refuses %s", a)
		}
	}
	if got := nilPolicy.Lists(); got.Whitelist != nil || got.Blacklist != nil || got.BlacklistPrefixes != nil {
		t.Errorf("nil Policy's Lists = %+v, want none", got)
	}
}

func TestPolicyBlockPrefix(t *testing.T) {
	p := NewPolicy(nil, nil)
	a := netip.MustParseAddr("192.0.2.7")
	mapped := netip.MustParseAddr("::ffff:192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::5")

	added, err := p.BlockPrefix(netip.MustParsePrefix("192.0.2.99/24")) // masked on the way in
	if err != nil || !added {
		t.Fatalf("BlockPrefix = %v, %v; want added", added, err)
	}
	if p.AllowedAddr(a) || p.AllowedAddr(mapped) {
		t.Fatalf("%s or %s allowed after blocking 192.0.2.0/24", a, mapped)
	}
	if !p.AllowedAddr(v6) {
		t.Fatalf("%s refused by an IPv4 prefix", v6)
	}
	if added, err := p.BlockPrefix(netip.MustParsePrefix("::ffff:192.0.2.0/120")); err != nil || added {
		t.Errorf("BlockPrefix of the same prefix, IPv4-mapped = %v, %v; want not added", added, err)
	}
	if added, err := p.BlockPrefix(netip.MustParsePrefix("2001:db8::/32")); err != nil || !added {
		t.Fatalf("BlockPrefix(2001:db8::/32) = %v, %v", added, err)
	}
	if p.AllowedAddr(v6) {
		t.Fatalf("%s allowed after blocking 2001:db8::/32", v6)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	if got := p.Lists().BlacklistPrefixes; !slices.Equal(got, want) {
		t.Errorf("BlacklistPrefixes = %v, want %v", got, want)
	}

	if p.UnblockPrefix(netip.MustParsePrefix("192.0.0.0/16")) {
		t.Error("UnblockPrefix of a wider prefix reported a removal")
	}
	if p.AllowedAddr(a) {
		t.Fatal("unblocking a wider prefix unblocked 192.0.2.0/24")
	}
	if !p.UnblockPrefix(netip.MustParsePrefix("::ffff:192.0.2.1/120")) {
		t.Error("UnblockPrefix(::ffff:192.0.2.1/120) did not remove 192.0.2.0/24")
	}
	if !p.AllowedAddr(a) || !p.AllowedAddr(mapped) {
		t.Errorf("%s still refused after UnblockPrefix", a)
	}
	if !p.UnblockPrefix(netip.MustParsePrefix("2001:db8::/32")) || !p.AllowedAddr(v6) {
		t.Errorf("%s still refused after UnblockPrefix", v6)
	}
	if got := p.Lists().BlacklistPrefixes; got != nil {
		t.Errorf("BlacklistPrefixes after unblocking all = %v, want none", got)
	}

	if _, err := p.BlockPrefix(netip.Prefix{}); err == nil {
		t.Error("BlockPrefix of the zero Prefix: no error")
	}
	if p.UnblockPrefix(netip.Prefix{}) {
		t.Error("UnblockPrefix of the zero Prefix reported a removal")
	}
}

// TestPolicyBlockAll: ::/0 blocks IPv6 and 0.0.0.0/0 IPv4, mapped addresses included.
func TestPolicyBlockAll(t *testing.T) {
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	p := NewPolicy(nil, nil, netip.MustParsePrefix("::/0"))
	if !p.AllowedAddr(v4) || p.AllowedAddr(v6) {
		t.Errorf("::/0: AllowedAddr(%s), AllowedAddr(%s) = %v, %v; want true, false", v4, v6, p.AllowedAddr(v4), p.AllowedAddr(v6))
	}
	p = NewPolicy(nil, nil, netip.MustParsePrefix("0.0.0.0/0"))
	if p.AllowedAddr(v4) || p.AllowedAddr(netip.MustParseAddr("::ffff:127.0.0.1")) || !p.AllowedAddr(v6) {
		t.Errorf("0.0.0.0/0 does not refuse exactly the IPv4 addresses")
	}
}

func TestPolicyNodeIDs(t *testing.T) {
	a, b, c := mustID(t), mustID(t), mustID(t)
	p := NewPolicy(nil, []identity.NodeID{a})
	if p.Allowed(a) || !p.Allowed(b) {
		t.Fatalf("blacklist {a}: Allowed(a), Allowed(b) = %v, %v", p.Allowed(a), p.Allowed(b))
	}
	if !p.Block(b) || p.Block(b) {
		t.Error("Block(b) twice: want added, then not")
	}
	if p.Allowed(b) {
		t.Fatal("b allowed after Block")
	}
	if !p.Unblock(a) || p.Unblock(a) {
		t.Error("Unblock(a) twice: want removed, then not")
	}
	if !p.Allowed(a) {
		t.Fatal("a refused after Unblock")
	}
	want := []identity.NodeID{b}
	if got := p.Lists().Blacklist; !slices.Equal(got, want) {
		t.Errorf("Blacklist = %v, want %v", got, want)
	}

	w := NewPolicy([]identity.NodeID{a, b}, []identity.NodeID{b})
	if !w.Allowed(a) || w.Allowed(b) || w.Allowed(c) {
		t.Errorf("whitelist {a,b}, blacklist {b}: Allowed a, b, c = %v, %v, %v; want true, false, false", w.Allowed(a), w.Allowed(b), w.Allowed(c))
	}
	if w.Unblock(b); !w.Allowed(b) {
		t.Error("b (whitelisted) refused after Unblock")
	}
	if w.Unblock(c); w.Allowed(c) {
		t.Error("c (not whitelisted) allowed after Unblock")
	}
	lists := w.Lists()
	wantWhite := []identity.NodeID{a, b}
	slices.SortFunc(wantWhite, identity.NodeID.Compare)
	if !slices.Equal(lists.Whitelist, wantWhite) || lists.Blacklist != nil {
		t.Errorf("Lists = %+v; want whitelist %v, no blacklist", lists, wantWhite)
	}
}

// TestPolicyConcurrent runs AllowedAddr against BlockPrefix and UnblockPrefix, for the
// race detector.
func TestPolicyConcurrent(t *testing.T) {
	p := NewPolicy(nil, nil)
	pfx := netip.MustParsePrefix("192.0.2.0/24")
	addr := netip.MustParseAddr("192.0.2.1")
	id := mustID(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				p.AllowedAddr(addr)
				p.Allowed(id)
				p.Lists()
			}
		})
	}
	wg.Go(func() {
		for range 1000 {
			p.BlockPrefix(pfx)
			p.Block(id)
			p.UnblockPrefix(pfx)
			p.Unblock(id)
		}
	})
	wg.Wait()
	if !p.AllowedAddr(addr) || !p.Allowed(id) {
		t.Error("refused after the last unblock")
	}
}

func BenchmarkPolicyAllowedAddr(b *testing.B) {
	addr := netip.MustParseAddr("::ffff:198.51.100.1")
	for _, n := range []int{0, 1, 16} {
		var prefixes []netip.Prefix
		for i := range n {
			prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
		}
		p := NewPolicy(nil, nil, prefixes...)
		b.Run(fmt.Sprintf("%d-prefixes", n), func(b *testing.B) {
			for b.Loop() {
				if !p.AllowedAddr(addr) {
					b.Fatal("refused")
				}
			}
		})
	}
}
