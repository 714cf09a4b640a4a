package crust_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
)

// testNode is a Service on loopback with its events recorded.
type testNode struct {
	*crust.Service
	t *testing.T

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every event
	connected map[crust.NodeID]int
	lost      map[crust.NodeID][]string
	received  map[crust.NodeID]int
	// undelivered counts the messages given back (Undelivered, both kinds) per peer.
	undelivered map[crust.NodeID]int
	order       []crust.Event // control events, in order
	onMessage   func(crust.Message)
	logs        *syncBuffer
	stopped     chan struct{}
}

// checkLeaks registers a goroutine-leak check that runs after every other cleanup of
// the test, so it sees the state after every Service was closed.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// fastConfig is a loopback config with short timers so failures show quickly.
func fastConfig() crust.Config {
	return crust.Config{
		ListenAddrs:       []string{"127.0.0.1:0"},
		KeepaliveInterval: 200 * time.Millisecond,
		PeerTimeout:       time.Second,
		HandshakeTimeout:  3 * time.Second,
		ShutdownGrace:     time.Second,
		// Tests open hundreds of connections from one address, 127.0.0.1; the limits
		// tests set their own.
		Limits: crust.Limits{SourceRate: -1},
	}
}

// newNode starts a Service and a goroutine recording its events. onMessage, if set,
// sees every message in the event goroutine.
func newNode(t *testing.T, cfg crust.Config, onMessage func(crust.Message)) *testNode {
	t.Helper()
	logs := &syncBuffer{}
	level := slog.LevelInfo
	if os.Getenv("CRUST_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: level}))
	}
	svc, err := crust.New(cfg)
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	n := &testNode{
		Service:     svc,
		t:           t,
		changed:     make(chan struct{}),
		connected:   make(map[crust.NodeID]int),
		lost:        make(map[crust.NodeID][]string),
		received:    make(map[crust.NodeID]int),
		undelivered: make(map[crust.NodeID]int),
		onMessage:   onMessage,
		logs:        logs,
		stopped:     make(chan struct{}),
	}
	go n.record()
	t.Cleanup(func() { n.Close() })
	return n
}

func (n *testNode) record() {
	defer close(n.stopped)
	for ev := range n.Events() {
		if m, ok := ev.(crust.Message); ok && n.onMessage != nil {
			n.onMessage(m)
		}
		n.mu.Lock()
		switch ev := ev.(type) {
		case crust.PeerConnected:
			n.connected[ev.ID]++
		case crust.PeerLost:
			n.lost[ev.ID] = append(n.lost[ev.ID], ev.Reason)
		case crust.Message:
			n.received[ev.From]++
		case crust.Undelivered:
			n.undelivered[ev.ID] += len(ev.Unacknowledged) + len(ev.Unsent)
		}
		if _, ok := ev.(crust.Message); !ok {
			n.order = append(n.order, ev)
		}
		close(n.changed)
		n.changed = make(chan struct{})
		n.mu.Unlock()
	}
}

// Close closes the Service and waits for the event recorder to see the end.
func (n *testNode) Close() {
	n.Service.Close()
	<-n.stopped
}

// waitUntil waits until cond (checked under the node's lock after every event) holds,
// failing the test after timeout.
func (n *testNode) waitUntil(timeout time.Duration, what string, cond func() bool) {
	n.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		ok := cond()
		ch := n.changed
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			n.t.Fatalf("%s: timed out after %v waiting for %s", n.ID().Short(), timeout, what)
		}
	}
}

// events returns the control events so far, in order.
func (n *testNode) events() []crust.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]crust.Event(nil), n.order...)
}

func (n *testNode) connectedCount(id crust.NodeID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.connected[id]
}

func (n *testNode) lostReasons(id crust.NodeID) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lost[id]...)
}

func (n *testNode) waitConnected(id crust.NodeID, times int) {
	n.t.Helper()
	n.waitUntil(5*time.Second, "PeerConnected", func() bool { return n.connected[id] >= times })
}

func (n *testNode) waitLost(id crust.NodeID, times int, timeout time.Duration) {
	n.t.Helper()
	n.waitUntil(timeout, "PeerLost", func() bool { return len(n.lost[id]) >= times })
}

// waitConns polls the peer actor until exactly want connections to id remain; the
// closing of duplicates is asynchronous and raises no event to wait on.
func (n *testNode) waitConns(id crust.NodeID, want int) {
	n.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := crust.ConnCount(n.Service, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: %d connections to %s, want %d", n.ID().Short(), got, id.Short(), want)
		}
		// Each ConnCount is an actor round trip: it waits behind the peer actor's
		// pending work, so this loop follows the actor rather than a clock.
		time.Sleep(time.Millisecond)
	}
}

func connect(t *testing.T, from, to *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := from.Connect(ctx, to.Contact()); err != nil {
		t.Fatalf("%s connecting to %s: %v", from.ID().Short(), to.ID().Short(), err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
