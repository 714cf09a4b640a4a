package crust_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// Send's promise with reconnecting on (the default), tested with a connection cut in
// the middle of a 100,000-message stream: the pair reconnects, the stream resumes
// where the receiver got to, and every message arrives exactly once and in order;
// nothing comes back as Undelivered.
func TestResumeAfterCut(t *testing.T) {
	checkLeaks(t)
	const count = 100_000
	var (
		mu       sync.Mutex
		received uint64 // the next sequence number expected
		bad      int    // out of order: a gap or a duplicate
		firstBad string
		cutAt    = make(chan struct{})
		cutOnce  sync.Once
		done     = make(chan struct{})
	)
	bcfg := fastConfig()
	bcfg.Protocols = []string{"tcp"}
	bcfg.OnMessage = func(m crust.Message) {
		mu.Lock()
		defer mu.Unlock()
		if got := binary.BigEndian.Uint64(m.Data); got != received {
			if bad == 0 {
				firstBad = fmt.Sprintf("%d where %d was due", got, received)
			}
			bad++
			if got < received {
				return // a duplicate: the count stays
			}
			received = got
		}
		received++
		if received == count/3 {
			cutOnce.Do(func() { close(cutAt) })
		}
		if received == count {
			close(done)
		}
	}
	b := newNode(t, bcfg, nil)
	a, proxy := senderViaProxy(t, b)
	sent := sendNumbered(a, b.ID(), count)
	<-cutAt
	proxy.cut()
	a.waitLost(b.ID(), 1, 10*time.Second)
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	mu.Lock()
	got, outOfOrder, first := received, bad, firstBad
	mu.Unlock()
	a.mu.Lock()
	var back int
	for _, ev := range a.order {
		if u, ok := ev.(crust.Undelivered); ok {
			back += len(u.Unacknowledged) + len(u.Unsent)
		}
	}
	var lost []crust.PeerLost
	for _, ev := range a.order {
		if l, ok := ev.(crust.PeerLost); ok {
			lost = append(lost, l)
		}
	}
	a.mu.Unlock()
	t.Logf("delivered %d of %d, out of order %d, given back %d; A's PeerLost: %+v", got, count, outOfOrder, back, lost)
	if outOfOrder != 0 {
		t.Fatalf("%d messages out of order, the first %s", outOfOrder, first)
	}
	if back != 0 {
		t.Fatalf("%d messages given back as Undelivered after a reconnect that resumed", back)
	}
	if got != count {
		t.Fatalf("delivered %d of %d", got, count)
	}
	if len(lost) != 1 || !lost[0].Reconnecting {
		t.Fatalf("A's PeerLost events %+v, want one, reconnecting", lost)
	}
	if d := a.Delivery(); d.Resumed != 1 || d.Resent == 0 || d.Unacknowledged+d.Unsent != 0 {
		t.Fatalf("A's Delivery %+v, want 1 resumed, some resent, none given back", d)
	}
}

// sendNumbered sends count 8-byte messages, numbered from 0, from one node to
// another in a goroutine of its own, and reports on the channel nil once Send has
// accepted them all, or the error that stopped it. Between a loss and the reconnect,
// while Send says not connected, it tries again until the session is back, for up
// to 10 s.
func sendNumbered(from *testNode, to crust.NodeID, count uint64) <-chan error {
	sent := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		var waiting time.Time // since when Send has said not connected
		for i := uint64(0); i < count; {
			binary.BigEndian.PutUint64(buf, i)
			switch err := from.Send(to, buf); {
			case err == nil:
				i++
				waiting = time.Time{}
			case errors.Is(err, crust.ErrNotConnected):
				if waiting.IsZero() {
					waiting = time.Now()
				} else if time.Since(waiting) > 10*time.Second {
					sent <- errors.New("not connected again within 10 s")
					return
				}
				time.Sleep(time.Millisecond) // polling until the session is back
			default:
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	return sent
}

// senderViaProxy starts a TCP-only node whose Send waits for room and connects it to b
// through a proxy, which a test can cut.
func senderViaProxy(t *testing.T, b *testNode) (*testNode, *tcpProxy) {
	t.Helper()
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.SendBlocks = true
	a := newNode(t, cfg, nil)
	proxy := newProxy(t, b.Endpoints()[0].Addr.String())
	connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	b.waitConnected(a.ID(), 1)
	return a, proxy
}

// cutStream records what a receiving node's OnMessage (note) sees of a numbered
// stream, and closes cutAt once count/3 have arrived: when the test cuts.
type cutStream struct {
	mu       sync.Mutex
	received []uint64 // by the receiving node, in order
	cutAt    chan struct{}
	cutOnce  sync.Once
	count    uint64
}

func (s *cutStream) note(m crust.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, binary.BigEndian.Uint64(m.Data))
	if uint64(len(s.received)) == s.count/3 {
		s.cutOnce.Do(func() { close(s.cutAt) })
	}
}

// The receiver restarts (same key, same address) between the cut and the reconnect:
// it cannot say how far it got, so the stream does not resume. The messages the
// sender held come back in Undelivered before the new session's PeerConnected, and
// delivered (before the restart), given back and delivered (after it, with 100 sent
// once reconnected) together are every message, in order, none lost.
func TestResumeReceiverRestarted(t *testing.T) {
	checkLeaks(t)
	const count = 30_000
	ident, _ := orderedIdentities(t)
	first := &cutStream{cutAt: make(chan struct{}), count: count}
	second := &cutStream{cutAt: make(chan struct{}), count: 3 * count} // never cut
	bcfg := fastConfig()
	bcfg.Protocols = []string{"tcp"}
	bcfg.Identity = ident
	bcfg.ShutdownGrace = 50 * time.Millisecond
	bcfg.OnMessage = first.note
	b := newNode(t, bcfg, nil)
	a, proxy := senderViaProxy(t, b)
	sent := sendNumbered(a, b.ID(), count)
	<-first.cutAt
	proxy.cut()
	b.Close() // the restart: what it knew of A's stream is gone
	addr := b.Endpoints()[0].Addr.String()
	bcfg.ListenAddrs = []string{addr}
	bcfg.OnMessage = second.note
	newNode(t, bcfg, nil) // B restarted
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	a.waitConnected(b.ID(), 2)
	// More after the reconnect (the stream may have been all accepted before the cut).
	const extra = 100
	buf := make([]byte, 8)
	for i := uint64(count); i < count+extra; i++ {
		binary.BigEndian.PutUint64(buf, i)
		if err := a.Send(b.ID(), buf); err != nil {
			t.Fatalf("sending %d after the reconnect: %v", i, err)
		}
	}

	// What A got back.
	var back []uint64
	var order []string
	a.mu.Lock()
	for _, ev := range a.order {
		switch ev := ev.(type) {
		case crust.Undelivered:
			order = append(order, "undelivered")
			for _, m := range append(ev.Unacknowledged, ev.Unsent...) {
				back = append(back, binary.BigEndian.Uint64(m))
			}
		case crust.PeerConnected:
			order = append(order, "connected")
		case crust.PeerLost:
			order = append(order, "lost")
		}
	}
	a.mu.Unlock()
	if got := strings.Join(order, ","); got != "connected,lost,undelivered,connected" {
		t.Fatalf("A's events %s, want connected,lost,undelivered,connected", got)
	}
	first.mu.Lock()
	before := slices.Clone(first.received)
	first.mu.Unlock()
	// B2 gets everything after the given-back block.
	var after []uint64
	pollUntil(t, 10*time.Second, func() bool {
		second.mu.Lock()
		defer second.mu.Unlock()
		after = slices.Clone(second.received)
		return len(after) > 0 && after[len(after)-1] == count+extra-1
	}, func() string {
		return fmt.Sprintf("B2 received %d messages, the last %v", len(after), after[max(len(after)-1, 0):])
	})
	t.Logf("delivered %d before the restart, given back %d, delivered %d after it", len(before), len(back), len(after))
	if d := a.Delivery(); d.Resumed != 0 || d.Unacknowledged+d.Unsent != uint64(len(back)) {
		t.Fatalf("A's Delivery %+v, want none resumed and the %d given back", d, len(back))
	}
	contiguous := func(what string, s []uint64) {
		for i := range s {
			if s[i] != s[0]+uint64(i) {
				t.Fatalf("%s: %d after %d", what, s[i], s[i-1])
			}
		}
	}
	contiguous("delivered before the restart", before)
	contiguous("given back", back)
	contiguous("delivered after the restart", after)
	if len(before) == 0 || before[0] != 0 {
		t.Fatalf("delivered before the restart: %v..., want from 0", before[:min(len(before), 3)])
	}
	// Given back: from no later than the first not delivered (some may have arrived,
	// their acknowledgement in flight), up to just before the first sent to B2.
	if len(back) == 0 || back[0] > uint64(len(before)) || back[len(back)-1]+1 != after[0] {
		t.Fatalf("given back %d..%d, delivered 0..%d before and %d.. after the restart: a gap", back[0], back[len(back)-1], len(before)-1, after[0])
	}
}

// Closing the node while it holds messages for a resume gives them back before the
// events end.
func TestResumeHeldGivenBackOnClose(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.ShutdownGrace = 50 * time.Millisecond
	a, b := sendIntoBlackhole(t, cfg)
	a.waitLost(b.ID(), 1, 10*time.Second) // by the keepalive timeout: the messages are held
	a.mu.Lock()
	early := slices.ContainsFunc(a.order, func(ev crust.Event) bool { _, ok := ev.(crust.Undelivered); return ok })
	a.mu.Unlock()
	if early {
		t.Fatalf("messages given back while reconnecting")
	}
	a.Close()
	if back, want := givenBack(a), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !bytes.Equal(back, want) {
		t.Fatalf("given back on Close: %v, want %v", back, want)
	}
}

// Closing the node while a peer does not answer (its Goodbye never comes within the
// grace) still gives back what was written to it and not acknowledged.
func TestCloseGivesBackWhenPeerSilent(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.PeerTimeout = time.Minute // the peer is not lost before Close
	cfg.ShutdownGrace = 50 * time.Millisecond
	a, _ := sendIntoBlackhole(t, cfg)
	a.Close()
	if back, want := givenBack(a), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !bytes.Equal(back, want) {
		t.Fatalf("given back on Close: %v, want %v", back, want)
	}
}

// sendIntoBlackhole starts b and a on cfg, connects a to b through a proxy and
// black-holes it, then has a send b ten one-byte messages, 0 to 9, which b never
// gets.
func sendIntoBlackhole(t *testing.T, cfg crust.Config) (a, b *testNode) {
	t.Helper()
	b = newNode(t, cfg, nil)
	a = newNode(t, cfg, nil)
	proxy := newProxy(t, b.Endpoints()[0].Addr.String())
	connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	b.waitConnected(a.ID(), 1)
	proxy.blackhole()
	for i := range 10 {
		if err := a.Send(b.ID(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// givenBack joins, in order, the messages n gave back in its Undelivered events.
func givenBack(n *testNode) []byte {
	var back []byte
	for _, ev := range n.events() {
		if u, ok := ev.(crust.Undelivered); ok {
			for _, m := range append(u.Unacknowledged, u.Unsent...) {
				back = append(back, m...)
			}
		}
	}
	return back
}
