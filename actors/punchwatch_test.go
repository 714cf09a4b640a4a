package actors

import (
	"net/netip"
	"testing"

	"github.com/crust-p2p/crust/transport/identity"
)

// A punch packet naming a peer reaches the punch toward that peer, with its source;
// one naming another node (behind the same NAT address, say) does not; the learned
// targets are bounded.
func TestPunchWatch(t *testing.T) {
	var p punching
	var peer, neighbour identity.NodeID
	peer[0], neighbour[0] = 1, 2
	target := netip.MustParseAddrPort("198.0.4.2:40700")
	w := p.watch(peer)
	other := p.watch(neighbour)
	p.seen(netip.MustParseAddrPort("[::ffff:198.0.4.2]:40999"), peer)
	select {
	case got := <-w.seen:
		if got != netip.MustParseAddrPort("198.0.4.2:40999") {
			t.Fatalf("seen %v, want 198.0.4.2:40999", got)
		}
	default:
		t.Fatal("the punch toward the peer was not told")
	}
	if len(other.seen) != 0 {
		t.Fatal("the punch toward another node was told")
	}
	p.unwatch(w)
	p.seen(target, peer)
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
