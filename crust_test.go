package crust_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// Two nodes exchange 100,000 messages each way; every one arrives, in order, once.
func TestExchangeInOrder(t *testing.T) {
	checkLeaks(t)
	const count = 100_000
	type seen struct {
		mu   sync.Mutex
		next uint64
		bad  int
	}
	check := func(s *seen) func(crust.Message) {
		return func(m crust.Message) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(m.Data) < 8 || binary.BigEndian.Uint64(m.Data) != s.next {
				s.bad++
			}
			s.next++
		}
	}
	var atA, atB seen
	cfg := fastConfig()
	cfg.SendBlocks = true
	a := newNode(t, cfg, check(&atA))
	b := newNode(t, cfg, check(&atB))
	connect(t, a, b)
	b.waitConnected(a.ID(), 1)

	send := func(from *testNode, to crust.NodeID) {
		buf := make([]byte, 64)
		for i := uint64(0); i < count; i++ {
			binary.BigEndian.PutUint64(buf, i)
			if err := from.Send(to, buf); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); send(a, b.ID()) }()
	go func() { defer wg.Done(); send(b, a.ID()) }()
	wg.Wait()
	a.waitUntil(20*time.Second, "all messages at A", func() bool { return a.received[b.ID()] == count })
	b.waitUntil(20*time.Second, "all messages at B", func() bool { return b.received[a.ID()] == count })
	for name, s := range map[string]*seen{"A": &atA, "B": &atB} {
		s.mu.Lock()
		if s.next != count || s.bad != 0 {
			t.Errorf("%s: %d messages, %d out of order or duplicated", name, s.next, s.bad)
		}
		s.mu.Unlock()
	}
	if got := a.connectedCount(b.ID()); got != 1 {
		t.Errorf("A saw %d PeerConnected, want 1", got)
	}
}

// With OnMessage set, messages bypass Events: the handler sees them all, in order,
// after the peer's PeerConnected was queued, and Events carries control events only.
func TestOnMessageHandler(t *testing.T) {
	checkLeaks(t)
	const count = 10_000
	var (
		mu        sync.Mutex
		next      uint64
		bad       int
		connected *testNode
		all       = make(chan struct{})
	)
	cfg := fastConfig()
	cfg.SendBlocks = true
	cfg.OnMessage = func(m crust.Message) {
		mu.Lock()
		defer mu.Unlock()
		if binary.BigEndian.Uint64(m.Data) != next {
			bad++
		}
		if next == 0 && connected.connectedCount(m.From) == 0 {
			// Events are recorded by another goroutine, so look at what is queued:
			// the recorder may lag, but Peers must already list the sender.
			if len(connected.Peers()) == 0 {
				bad++
			}
		}
		if next++; next == count {
			close(all)
		}
	}
	b := newNode(t, cfg, nil)
	connected = b
	a := newNode(t, fastConfig(), nil)
	connect(t, a, b)
	buf := make([]byte, 8)
	for i := range uint64(count) {
		binary.BigEndian.PutUint64(buf, i)
		for {
			err := a.Send(b.ID(), buf)
			if err == nil {
				break
			}
			if !errors.Is(err, crust.ErrQueueFull) {
				t.Fatalf("send %d: %v", i, err)
			}
			runtime.Gosched() // a full queue: let the writer drain it
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	if next != count || bad != 0 {
		t.Errorf("handler saw %d of %d messages, %d out of order or early", next, count, bad)
	}
	if n := b.received[a.ID()]; n != 0 {
		t.Errorf("%d messages also came as events", n)
	}
	b.waitConnected(a.ID(), 1)
}

// An idle connection costs one goroutine per end, its reader: the writer runs only
// while there is something to write, and comes back for the next message.
func TestIdleConnectionHasNoWriterGoroutine(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.KeepaliveInterval, cfg.PeerTimeout = time.Minute, 5*time.Minute // no pings while we look
	a, b := newNode(t, cfg, nil), newNode(t, cfg, nil)
	connect(t, a, b)
	b.waitConnected(a.ID(), 1) // Connect returns when A is connected; B may be a moment later
	goroutines := func(fn string) int {
		var buf bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&buf, 2)
		return bytes.Count(buf.Bytes(), []byte(fn))
	}
	waitIdle := func() {
		t.Helper()
		// Both ends' readers run (the acceptor may start its own just after Connect
		// returns), and no writer.
		deadline := time.Now().Add(5 * time.Second)
		for {
			writers, readers := goroutines("actors.(*connState).writeLoop("), goroutines("actors.(*connState).readLoop(")
			if writers == 0 && readers == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d writer and %d reader goroutines on one idle connection (two ends), want 0 and 2", writers, readers)
			}
			time.Sleep(5 * time.Millisecond) // polling for a condition, not a delay
		}
	}
	for round := range 3 {
		waitIdle()
		if err := a.Send(b.ID(), []byte{byte(round)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(a.ID(), []byte{byte(round)}); err != nil {
			t.Fatal(err)
		}
		b.waitUntil(5*time.Second, "a message", func() bool { return b.received[a.ID()] == round+1 })
		a.waitUntil(5*time.Second, "a message", func() bool { return a.received[b.ID()] == round+1 })
	}
}
