package crust_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// Send's promise, tested with a connection cut in the middle of a 100,000-message
// stream: every message Send accepted either reached the peer (in order, once) or
// came back in Undelivered; the two together are exactly what was sent.
func TestNoSilentLossWhenConnectionDies(t *testing.T) {
	checkLeaks(t)
	const count = 100_000
	var (
		mu       sync.Mutex
		received uint64 // the next sequence number expected
		bad      int
		cutAt    = make(chan struct{})
		cutOnce  sync.Once
	)
	bcfg := fastConfig()
	bcfg.Protocols = []string{"tcp"}
	bcfg.ReconnectFor = -1 // the session ends with the cut: its messages must all be accounted for
	bcfg.OnMessage = func(m crust.Message) {
		mu.Lock()
		defer mu.Unlock()
		if binary.BigEndian.Uint64(m.Data) != received {
			bad++
		}
		if received++; received == count/3 {
			cutOnce.Do(func() { close(cutAt) })
		}
	}
	b := newNode(t, bcfg, nil)
	acfg := fastConfig()
	acfg.Protocols = []string{"tcp"}
	acfg.ReconnectFor = -1
	acfg.SendBlocks = true
	a := newNode(t, acfg, nil)
	proxy := newProxy(t, b.Endpoints()[0].Addr.String())
	connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	b.waitConnected(a.ID(), 1)

	sending := make(chan uint64)
	go func() {
		buf := make([]byte, 8)
		var accepted uint64
		for i := range uint64(count) {
			binary.BigEndian.PutUint64(buf, i)
			if err := a.Send(b.ID(), buf); err != nil {
				if !errors.Is(err, crust.ErrNotConnected) {
					t.Errorf("send %d: %v", i, err)
				}
				break
			}
			accepted++
		}
		sending <- accepted
	}()
	<-cutAt
	proxy.cut()
	accepted := <-sending
	a.waitLost(b.ID(), 1, 10*time.Second)
	b.waitLost(a.ID(), 1, 10*time.Second)

	// What A got back, in order: the unacknowledged ones, then the unsent ones.
	var back []uint64
	a.mu.Lock()
	for _, ev := range a.order {
		if u, ok := ev.(crust.Undelivered); ok && u.ID == b.ID() {
			for _, m := range append(u.Unacknowledged, u.Unsent...) {
				back = append(back, binary.BigEndian.Uint64(m))
			}
		}
	}
	a.mu.Unlock()
	mu.Lock()
	got, outOfOrder := received, bad
	mu.Unlock()
	t.Logf("accepted %d of %d, delivered %d, given back %d", accepted, count, got, len(back))
	if outOfOrder != 0 {
		t.Fatalf("%d messages out of order", outOfOrder)
	}
	if len(back) == 0 {
		if got != accepted {
			t.Fatalf("accepted %d, delivered %d, none given back: %d lost silently", accepted, got, accepted-got)
		}
		return
	}
	// The given-back ones are contiguous, end at the last accepted, and start no
	// later than the first not delivered (the acknowledged ones arrived; some
	// unacknowledged ones may have arrived too).
	for i := range back {
		if back[i] != back[0]+uint64(i) {
			t.Fatalf("given back %d after %d: not contiguous", back[i], back[i-1])
		}
	}
	if first, last := back[0], back[len(back)-1]; first > got || last != accepted-1 {
		t.Fatalf("given back %d..%d; delivered 0..%d of 0..%d accepted: a gap was lost silently", first, last, got-1, accepted-1)
	}
}
