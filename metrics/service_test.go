package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/metrics"
)

// node is a Service on 127.0.0.1 whose events feed its Collector, as crust-node's do.
type node struct {
	*crust.Service
	col *metrics.Collector

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every event
	connected []crust.PeerConnected
	lost      int
	received  int
	stopped   chan struct{}
}

// loopback is a node config that keeps every packet on loopback, with short timers.
func loopback() crust.Config {
	return crust.Config{
		ListenAddrs:       []string{"127.0.0.1:0"},
		KeepaliveInterval: 200 * time.Millisecond,
		PeerTimeout:       2 * time.Second,
		HandshakeTimeout:  5 * time.Second,
		ShutdownGrace:     time.Second,
	}
}

func newNode(t *testing.T, cfg crust.Config) *node {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("CRUST_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	svc, err := crust.New(cfg)
	if err != nil {
		t.Fatalf("starting a node: %v", err)
	}
	n := &node{Service: svc, col: metrics.New(svc), changed: make(chan struct{}), stopped: make(chan struct{})}
	go n.record()
	t.Cleanup(func() {
		svc.Close()
		<-n.stopped
	})
	return n
}

func (n *node) record() {
	defer close(n.stopped)
	for ev := range n.Events() {
		n.col.Observe(ev)
		n.mu.Lock()
		switch ev := ev.(type) {
		case crust.PeerConnected:
			n.connected = append(n.connected, ev)
		case crust.PeerLost:
			n.lost++
		case crust.Message:
			n.received++
		}
		close(n.changed)
		n.changed = make(chan struct{})
		n.mu.Unlock()
	}
}

// waitUntil waits until cond, checked under n's lock after every event, holds.
func (n *node) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		ok, ch := cond(), n.changed
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: timed out waiting for %s", n.ID().Short(), what)
		}
	}
}

func (n *node) connect(t *testing.T, c crust.Contact) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Connect(ctx, c); err != nil {
		t.Fatalf("%s connecting to %s: %v", n.ID().Short(), c.ID.Short(), err)
	}
}

func (n *node) send(t *testing.T, to crust.NodeID, sizes ...int) {
	t.Helper()
	for _, size := range sizes {
		if err := n.Send(to, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
}

// value returns the value of metric name whose one label has the value label from c:
// a counter's or gauge's value, a histogram's count of observations. ok is false if
// there is none.
func value(t *testing.T, c prometheus.Collector, name, label string) (v float64, ok bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != label {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// want is a metric's expected value, by name and label value.
type want struct {
	name, label string
	value       float64
}

// check compares each of wants with c's metrics; the first mismatch is the error.
func check(t *testing.T, c prometheus.Collector, wants ...want) error {
	t.Helper()
	for _, w := range wants {
		if got, ok := value(t, c, w.name, w.label); !ok || got != w.value {
			return fmt.Errorf("%s{%q} = %v (present %v), want %v", w.name, w.label, got, ok, w.value)
		}
	}
	return nil
}

// eventually retries check until it passes: a sender counts what it sent once its
// write returns, which may be after the receiver has the messages, and there is no
// event to wait on.
func eventually(t *testing.T, c prometheus.Collector, wants ...want) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check(t, c, wants...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		<-tick.C
	}
}

// traffic are the four traffic counters' expected values.
func traffic(bytesIn, bytesOut, msgsIn, msgsOut float64) []want {
	return []want{
		{"crust_bytes_total", "in", bytesIn}, {"crust_bytes_total", "out", bytesOut},
		{"crust_messages_total", "in", msgsIn}, {"crust_messages_total", "out", msgsOut},
	}
}

// Two nodes on 127.0.0.1 exchange messages: each counts what was sent and received,
// shows its connection by kind, and keeps the totals when the peer is lost and
// comes back with fresh per-peer counters.
func TestServiceTraffic(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	a, b := newNode(t, loopback()), newNode(t, loopback())
	a.connect(t, b.Contact())
	b.waitUntil(t, "A connected", func() bool { return len(b.connected) == 1 })

	a.send(t, b.ID(), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) // 10 messages, 55 bytes
	b.send(t, a.ID(), 100, 100, 100)
	b.waitUntil(t, "A's messages", func() bool { return b.received == 10 })
	a.waitUntil(t, "B's messages", func() bool { return a.received == 3 })
	eventually(t, a.col, traffic(300, 55, 3, 10)...)
	eventually(t, b.col, traffic(55, 300, 10, 3)...)
	if err := check(t, a.col,
		want{"crust_connections", "tcp-direct", 1}, want{"crust_connections", "quic-direct", 0},
		want{"crust_ladder_attempts_total", "tcp-direct", 1}, want{"crust_ladder_successes_total", "tcp-direct", 1}); err != nil {
		t.Fatalf("A: %v", err)
	}
	// B accepted the connection: inbound connections count as their kind.
	if err := check(t, b.col, want{"crust_connections", "tcp-direct", 1}, want{"crust_ladder_successes_total", "tcp-direct", 1}); err != nil {
		t.Fatalf("B: %v", err)
	}

	// The peers part: their counters go with them, the totals stay.
	if err := a.Disconnect(b.ID()); err != nil {
		t.Fatal(err)
	}
	a.waitUntil(t, "B lost", func() bool { return a.lost == 1 })
	b.waitUntil(t, "A lost", func() bool { return b.lost == 1 })
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("peers after the disconnect: A %v, B %v", a.Peers(), b.Peers())
	}
	if err := check(t, a.col, append(traffic(300, 55, 3, 10), want{"crust_connections", "tcp-direct", 0})...); err != nil {
		t.Fatalf("A after B was lost: %v", err)
	}
	if err := check(t, b.col, traffic(55, 300, 10, 3)...); err != nil {
		t.Fatalf("B after A was lost: %v", err)
	}

	// A new session counts from zero in Peers; the totals go on from where they were.
	a.connect(t, b.Contact())
	b.waitUntil(t, "A connected again", func() bool { return len(b.connected) == 2 })
	a.send(t, b.ID(), 7)
	b.waitUntil(t, "A's message", func() bool { return b.received == 11 })
	eventually(t, a.col, traffic(300, 62, 3, 11)...)
	eventually(t, b.col, traffic(62, 300, 11, 3)...)
	if err := check(t, a.col, want{"crust_connections", "tcp-direct", 1}, want{"crust_ladder_successes_total", "tcp-direct", 2}); err != nil {
		t.Fatalf("A: %v", err)
	}
}

// Sessions that began and ended before the first scrape count in full: two
// sessions come and go unseen, and the first scrape, after both, has every message
// and byte of both.
func TestServiceTrafficOfEndedSessions(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	a, b := newNode(t, loopback()), newNode(t, loopback())
	for i, sizes := range [][]int{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1000, 1000}} {
		a.connect(t, b.Contact())
		b.waitUntil(t, "A connected", func() bool { return len(b.connected) == i+1 })
		a.send(t, b.ID(), sizes...)
		b.send(t, a.ID(), 100)
		a.waitUntil(t, "B's message", func() bool { return a.received == i+1 })
		b.waitUntil(t, "A's messages", func() bool { return b.received == []int{10, 12}[i] })
		if err := a.Disconnect(b.ID()); err != nil {
			t.Fatal(err)
		}
		a.waitUntil(t, "B lost", func() bool { return a.lost == i+1 })
		b.waitUntil(t, "A lost", func() bool { return b.lost == i+1 })
	}
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("peers after the disconnects: A %v, B %v", a.Peers(), b.Peers())
	}
	// 55 + 2000 bytes in 12 messages from A, 2 × 100 bytes from B.
	eventually(t, a.col, traffic(200, 2055, 2, 12)...)
	eventually(t, b.col, traffic(2055, 200, 12, 2)...)
	if err := check(t, a.col, want{"crust_connections", "tcp-direct", 0}, want{"crust_ladder_successes_total", "tcp-direct", 2}); err != nil {
		t.Fatal(err)
	}
}

// A node that punches to its peer (here blind, toward the only endpoint it was
// given: no rendezvous, and nothing on loopback to punch through) records the punch
// step's duration in crust_punch_seconds; the peer, which only accepted, does not.
func TestServicePunchDuration(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cfg := loopback()
	cfg.Protocols = []string{"tcp"}
	a, b := newNode(t, cfg), newNode(t, cfg)
	a.connect(t, crust.Contact{ID: b.ID(), Reflected: b.Endpoints()})
	var pc crust.PeerConnected
	a.waitUntil(t, "B connected", func() bool {
		if len(a.connected) == 1 {
			pc = a.connected[0]
		}
		return len(a.connected) == 1
	})
	if pc.Kind != crust.StepTCPPunch || pc.Took <= 0 {
		t.Fatalf("PeerConnected kind %q, took %v; want tcp-punch and a duration", pc.Kind, pc.Took)
	}
	if got := punchCounts(t, a.col)[crust.StepTCPPunch]; got.n != 1 || !near(got.sum, pc.Took.Seconds()) {
		t.Fatalf("crust_punch_seconds{tcp-punch}: %d observations, sum %v; want 1, %v", got.n, got.sum, pc.Took.Seconds())
	}
	if err := check(t, a.col, want{"crust_connections", "tcp-punch", 1}, want{"crust_ladder_attempts_total", "tcp-punch", 1},
		want{"crust_ladder_successes_total", "tcp-punch", 1}); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(t, "A connected", func() bool { return len(b.connected) == 1 })
	for kind, got := range punchCounts(t, b.col) {
		if got.n != 0 {
			t.Errorf("B, which ran no punch step, has crust_punch_seconds{%q} %+v", kind, got)
		}
	}
}

// A blacklisted node's connection attempt shows in crust_refused_total.
func TestServiceRefusedBlacklisted(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cfg := loopback()
	cfg.Protocols = []string{"tcp"}
	c := newNode(t, cfg)
	cfg.Blacklist = []crust.NodeID{c.ID()}
	a := newNode(t, cfg)
	if _, ok := value(t, a.col, "crust_refused_total", "blacklist"); ok {
		t.Fatal("crust_refused_total{blacklist} before anything was refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx, a.Contact()); err == nil {
		t.Fatal("a blacklisted node got connected")
	}
	// A counts the refusal as its handshake ends, which may be after C has its answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := value(t, a.col, "crust_refused_total", "blacklist"); v >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no crust_refused_total{blacklist} after the attempt; Refused() = %v", a.Refused())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := check(t, a.col, want{"crust_connections", "tcp-direct", 0}); err != nil {
		t.Fatal(err)
	}
}

// With one handshake allowed in progress, a second connection is closed before its
// handshake, and crust_refused_total says why.
func TestServiceRefusedPendingHandshakes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cfg := loopback()
	cfg.Protocols = []string{"tcp"}
	cfg.MaxPendingHandshakes = 1
	a := newNode(t, cfg)
	if _, ok := value(t, a.col, "crust_refused_total", "pending-handshakes"); ok {
		t.Fatal("crust_refused_total{pending-handshakes} before anything was refused")
	}
	addr := a.Endpoints()[0].Addr.String()
	// The first connection says nothing: its handshake waits, holding the one place.
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// A closes the second once it has counted the refusal.
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the second connection was not closed: read %v", err)
	}
	if err := check(t, a.col, want{"crust_refused_total", "pending-handshakes", 1}); err != nil {
		t.Fatal(err)
	}
}
