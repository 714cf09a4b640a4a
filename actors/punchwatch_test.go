package actors

import (
	"net/netip"
	"testing"
)

// A punch packet from a target's address reaches the punch toward it, with its own
// port; one from elsewhere does not; the learned targets are bounded.
func TestPunchWatch(t *testing.T) {
	var p punching
	target := netip.MustParseAddrPort("198.0.4.2:40700")
	w := p.watch([]netip.AddrPort{target})
	other := p.watch([]netip.AddrPort{netip.MustParseAddrPort("198.0.1.2:40600")})
	p.seen(netip.MustParseAddrPort("[::ffff:198.0.4.2]:40999"))
	select {
	case got := <-w.seen:
		if got != netip.MustParseAddrPort("198.0.4.2:40999") {
			t.Fatalf("seen %v, want 198.0.4.2:40999", got)
		}
	default:
		t.Fatal("the punch toward 198.0.4.2 was not told")
	}
	if len(other.seen) != 0 {
		t.Fatal("a punch toward another address was told")
	}
	p.unwatch(w)
	p.seen(target)
	if len(w.seen) != 0 {
		t.Fatal("an ended punch was told")
	}

	ts := &targetSet{list: []netip.AddrPort{target}}
	if ts.add(target) {
		t.Fatal("a known target was added again")
	}
	for i := range maxLearnedTargets + 2 {
		added := ts.add(netip.AddrPortFrom(target.Addr(), uint16(50000+i)))
		if added != (i < maxLearnedTargets) {
			t.Fatalf("add %d: %v", i, added)
		}
	}
	if n := len(ts.snapshot()); n != 1+maxLearnedTargets {
		t.Fatalf("%d targets, want %d", n, 1+maxLearnedTargets)
	}
}
