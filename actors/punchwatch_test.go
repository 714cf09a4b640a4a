package actors

import (
	"context"
	"net/netip"
	"testing"
	"time"

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

// Birthday punches run birthdaysAtOnce at a time, at most birthdaysPerWindow per
// window.
func TestBirthdayBudget(t *testing.T) {
	b := newBirthdayBudget()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	ctx := context.Background()
	for range birthdaysAtOnce {
		if err := b.take(ctx, clock); err != nil {
			t.Fatal(err)
		}
	}
	busy, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.take(busy, clock); err == nil {
		t.Fatalf("birthday punch %d ran beside %d others", birthdaysAtOnce+1, birthdaysAtOnce)
	}
	for range birthdaysAtOnce - 1 {
		b.release()
	}
	b.release()
	for i := birthdaysAtOnce; i < birthdaysPerWindow; i++ {
		if err := b.take(ctx, clock); err != nil {
			t.Fatal(err)
		}
		b.release()
	}
	if err := b.take(ctx, clock); err == nil {
		t.Fatalf("birthday punch %d in one window was admitted", birthdaysPerWindow+1)
	}
	now = now.Add(birthdayWindow)
	if err := b.take(ctx, clock); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	b.release()
}
