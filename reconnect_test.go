package crust_test

import (
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// lostEvents returns n's PeerLost events for id, in order.
func lostEvents(n *testNode, id crust.NodeID) []crust.PeerLost {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []crust.PeerLost
	for _, ev := range n.order {
		if l, ok := ev.(crust.PeerLost); ok && l.ID == id {
			out = append(out, l)
		}
	}
	return out
}

// waitRetired waits until no node of nodes has a peer actor left: none is dialling or
// waiting to redial.
func waitRetired(t *testing.T, nodes ...*testNode) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range nodes {
		for crust.PeerActors(n.Service) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still has %d peer actors", n.ID().Short(), crust.PeerActors(n.Service))
			}
			time.Sleep(5 * time.Millisecond) // polling: retiring raises no event
		}
	}
}

// blackholedPair connects a to b through a proxy, then black-holes it, and returns
// once both have lost the other by the keepalive timeout (no Goodbye gets through).
func blackholedPair(t *testing.T, cfg crust.Config) (a, b *testNode) {
	t.Helper()
	a, b = newNode(t, cfg, nil), newNode(t, cfg, nil)
	proxy := newProxy(t, b.Endpoints()[0].Addr.String())
	connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	b.waitConnected(a.ID(), 1)
	proxy.blackhole()
	limit := cfg.PeerTimeout + cfg.KeepaliveInterval + 2*time.Second
	a.waitLost(b.ID(), 1, limit)
	b.waitLost(a.ID(), 1, limit)
	return a, b
}

// A connection that dies without a Goodbye (here: a black hole, so both ends time
// out) is a fault, not a farewell: PeerLost says the node is reconnecting, and the
// pair is connected again without anyone calling Connect, messages flowing.
func TestReconnectAfterFault(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	a, b := blackholedPair(t, cfg)
	for _, n := range []*testNode{a, b} {
		other := a
		if n == a {
			other = b
		}
		if l := lostEvents(n, other.ID()); !l[0].Reconnecting || !strings.Contains(l[0].Reason, "timeout") {
			t.Errorf("%s: PeerLost %+v, want a timeout with Reconnecting", n.ID().Short(), l[0])
		}
	}
	// B redials A where A's Hello said it listens (not through the hole).
	a.waitUntil(10*time.Second, "PeerConnected again", func() bool { return a.connected[b.ID()] == 2 })
	b.waitUntil(10*time.Second, "PeerConnected again", func() bool { return b.connected[a.ID()] == 2 })
	if err := a.Send(b.ID(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(5*time.Second, "a message after the reconnect", func() bool { return b.received[a.ID()] == 1 })
}

// A peer that leaves with a Goodbye is not redialled: PeerLost says so, and no
// PeerConnected follows.
func TestNoReconnectAfterGoodbye(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	a, b := newNode(t, cfg, nil), newNode(t, cfg, nil)
	connect(t, a, b)
	b.waitConnected(a.ID(), 1)
	if err := b.Disconnect(a.ID()); err != nil {
		t.Fatal(err)
	}
	a.waitLost(b.ID(), 1, 5*time.Second)
	b.waitLost(a.ID(), 1, 5*time.Second)
	for _, l := range append(lostEvents(a, b.ID()), lostEvents(b, a.ID())...) {
		if l.Reconnecting {
			t.Errorf("PeerLost %+v after a Goodbye says reconnecting", l)
		}
	}
	// Both peer actors retire: nothing is left trying.
	waitRetired(t, a, b)
}

// With ReconnectFor negative a fault ends the session for good.
func TestReconnectOff(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.ReconnectFor = -1
	a, b := blackholedPair(t, cfg)
	if l := lostEvents(a, b.ID()); l[0].Reconnecting {
		t.Errorf("PeerLost %+v says reconnecting with ReconnectFor < 0", l[0])
	}
	waitRetired(t, a, b)
}
