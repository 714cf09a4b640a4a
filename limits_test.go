package crust_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// waitRefused waits until node has counted want refusals for reason.
func waitRefused(t *testing.T, node *testNode, reason string, want uint64) {
	t.Helper()
	pollUntil(t, 5*time.Second, func() bool { return node.Refused()[reason] >= want }, func() string {
		return fmt.Sprintf("%s: %d %q refusals, want %d (all: %v)", node.ID().Short(), node.Refused()[reason], reason, want, node.Refused())
	})
}

// pollUntil polls cond until it holds, failing with why() after timeout: for state
// that changes without an event (counters, connections closing).
func pollUntil(t *testing.T, timeout time.Duration, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
		time.Sleep(5 * time.Millisecond) // polling for a condition, not a delay
	}
}

// Beyond MaxConnections an inbound connection is closed before its handshake; the
// ones already open are untouched, and the node takes new ones once one has gone.
func TestMaxConnections(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.Limits.MaxConnections = 2
	hub := newNode(t, cfg, nil)
	client := fastConfig()
	client.Protocols = []string{"tcp"}
	a, b, c := newNode(t, client, nil), newNode(t, client, nil), newNode(t, client, nil)
	connect(t, a, hub)
	connect(t, b, hub)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx, hub.Contact()); err == nil {
		t.Fatal("a third connection got in past MaxConnections 2")
	}
	waitRefused(t, hub, "max-connections", 1)
	if err := a.Send(hub.ID(), []byte("still served")); err != nil {
		t.Fatal(err)
	}
	hub.waitUntil(5*time.Second, "a's message", func() bool { return hub.received[a.ID()] == 1 })
	if err := a.Disconnect(hub.ID()); err != nil {
		t.Fatal(err)
	}
	hub.waitLost(a.ID(), 1, 5*time.Second)
	pollUntil(t, 5*time.Second, func() bool { return hub.ConnCount(a.ID()) == 0 }, func() string { return "a's connection still open" })
	connect(t, c, hub) // room again
}

// An address that opens connections faster than SourceRate has the extra ones closed
// before any TLS work; a node elsewhere is not affected.
func TestSourceRate(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.Limits.SourceRate, cfg.Limits.SourceBurst = 0.001, 3 // three, then none for a long time
	hub := newNode(t, cfg, nil)
	addr := hub.Contact().Endpoints[0].Addr.String()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitRefused(t, hub, "source-rate", 5)
	// The refused ones are closed at once: reading them ends without a byte.
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed != 5 {
		t.Errorf("%d of 8 connections closed by the node, want the 5 beyond the burst", closed)
	}
	if n := hub.Refused()["source-rate"]; n != 5 {
		t.Errorf("Refused source-rate = %d, want 5", n)
	}
}

// A peer sending faster than PeerMessageRate is read no faster than that: nothing is
// lost or reordered, the pauses are counted, and the delivery takes as long as the
// rate says it must.
func TestPeerMessageRate(t *testing.T) {
	checkLeaks(t)
	const count, rate = 3000, 1000
	cfg := fastConfig()
	cfg.Limits.PeerMessageRate = rate
	rx, elapsed, bad := streamIntoLimit(t, cfg, true, count, 8)
	if bad != 0 {
		t.Errorf("%d messages out of order", bad)
	}
	if rx.Refused()["peer-rate"] == 0 {
		t.Error("no peer-rate pause counted")
	}
	// A burst of one second's worth, then the rate. The reader pauses after a run of
	// up to 256 messages, so the last run comes without its pause: 1.74 s at the least.
	if min := (count - rate - 256) * time.Second / rate * 9 / 10; elapsed < min {
		t.Errorf("%d messages took %v at a limit of %d/s: want at least %v", count, elapsed, rate, min)
	}
}

// A peer sending more bytes a second than PeerByteRate is read no faster than that,
// once the bucket's burst (16 MiB at the least, so that a whole frame fits) is spent:
// nothing is lost or reordered, and the pauses are counted. The message rate is far
// from its limit, so only the byte limit can hold the sender back.
func TestPeerByteRate(t *testing.T) {
	checkLeaks(t)
	const (
		rate  = 4 << 20  // bytes per second
		burst = 16 << 20 // the byte bucket's burst: max(one second's worth, 16 MiB)
		size  = 64 << 10
		count = 384 // 24 MiB: the burst and two seconds' worth
	)
	cfg := fastConfig()
	cfg.Limits.PeerByteRate = rate
	rx, elapsed, bad := streamIntoLimit(t, cfg, false, count, size)
	t.Logf("%d MiB at a limit of %d MiB/s after a %d MiB burst: %v, %d pauses", count*size>>20, rate>>20, burst>>20, elapsed.Round(time.Millisecond), rx.Refused()["peer-rate"])
	if bad != 0 {
		t.Errorf("%d messages out of order or cut", bad)
	}
	if rx.Refused()["peer-rate"] == 0 {
		t.Error("no peer-rate pause counted")
	}
	// The reader charges a run (up to 1 MiB of messages) when it ends, so the last
	// run comes without its pause: 1.73 s at the least.
	if min := time.Duration(count*size-burst-(1<<20)-size) * time.Second / rate * 9 / 10; elapsed < min {
		t.Errorf("%d MiB took %v at a limit of %d MiB/s: want at least %v", count*size>>20, elapsed, rate>>20, min)
	}
}

// streamIntoLimit starts a receiver with cfg (its OnMessage handler if handler, else
// Events) and a blocking sender, sends count numbered messages of size bytes, and
// returns the receiver, how long they took to arrive, and how many came out of order
// or cut.
func streamIntoLimit(t *testing.T, cfg crust.Config, handler bool, count, size int) (rx *testNode, elapsed time.Duration, bad int) {
	t.Helper()
	var (
		mu   sync.Mutex
		next uint64
		done = make(chan struct{})
	)
	check := func(m crust.Message) {
		mu.Lock()
		defer mu.Unlock()
		if len(m.Data) != size || binary.BigEndian.Uint64(m.Data) != next {
			bad++
		}
		if next++; next == uint64(count) {
			close(done)
		}
	}
	if handler {
		cfg.OnMessage = check
		rx = newNode(t, cfg, nil)
	} else {
		rx = newNode(t, cfg, check)
	}
	scfg := fastConfig()
	scfg.SendBlocks = true
	tx := newNode(t, scfg, nil)
	connect(t, tx, rx)
	start := time.Now()
	buf := make([]byte, size)
	for i := range uint64(count) {
		binary.BigEndian.PutUint64(buf, i)
		if err := tx.Send(rx.ID(), buf); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received %d of %d", next, count)
	}
	elapsed = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	return rx, elapsed, bad
}

// One peer sends as fast as it can while another sends 100 messages a second: with
// the flooder held to its PeerMessageRate, the other's latency stays within twice
// what it is without the flood. Messages come as Events, which all peers share:
// unchecked, the flood fills the pending messages (MaxPendingMessages) and the other
// peer's messages wait behind thousands of the flooder's.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	checkLeaks(t)
	const slowID = 0xff
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	cfg := fastConfig()
	cfg.Limits.PeerMessageRate = 20_000
	rx := newNode(t, cfg, func(m crust.Message) {
		if len(m.Data) == 9 && m.Data[0] == slowID {
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Data[1:])))
			mu.Lock()
			latencies = append(latencies, time.Since(sent))
			mu.Unlock()
		}
	})
	fcfg := fastConfig()
	fcfg.SendBlocks = true
	flooder, slow := newNode(t, fcfg, nil), newNode(t, fastConfig(), nil)
	connect(t, flooder, rx)
	connect(t, slow, rx)
	// median sends 100 messages at 100/s from slow and returns their median latency.
	median := func() time.Duration {
		mu.Lock()
		latencies = latencies[:0]
		mu.Unlock()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		msg := make([]byte, 9)
		msg[0] = slowID
		for range 100 {
			<-tick.C
			binary.BigEndian.PutUint64(msg[1:], uint64(time.Now().UnixNano()))
			if err := slow.Send(rx.ID(), msg); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(latencies)
			mu.Unlock()
			if n == 100 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling for the last arrivals
		}
		mu.Lock()
		defer mu.Unlock()
		if len(latencies) != 100 {
			t.Fatalf("%d of 100 messages arrived", len(latencies))
		}
		s := slices.Clone(latencies)
		slices.Sort(s)
		return s[len(s)/2]
	}
	unloaded := median()
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		msg := make([]byte, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := flooder.Send(rx.ID(), msg); err != nil {
				return
			}
		}
	}()
	loaded := median()
	close(stop)
	<-flooding
	t.Logf("slow peer's median latency: %v alone, %v beside the flood (flooder paused %d times)", unloaded, loaded, rx.Refused()["peer-rate"])
	if rx.Refused()["peer-rate"] == 0 {
		t.Error("the flooder was never held back")
	}
	// A floor of 100 µs keeps scheduler noise on a loopback median of tens of µs
	// from failing the test.
	if limit := max(2*unloaded, unloaded+100*time.Microsecond); loaded > limit {
		t.Errorf("median latency %v beside the flood, %v alone: more than twice", loaded, unloaded)
	}
}

// Connections from a blacklisted prefix are closed before their handshake and
// counted; addresses in it are not dialled.
func TestBlacklistPrefixAtAcceptAndDial(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.BlacklistPrefixes = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	hub := newNode(t, cfg, nil)
	client := fastConfig()
	client.Protocols = []string{"tcp"}
	peer := newNode(t, client, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := peer.Connect(ctx, hub.Contact()); err == nil {
		t.Fatal("a peer from a blocked prefix got in")
	}
	waitRefused(t, hub, "blacklist", 1)
	err := hub.Connect(ctx, peer.Contact())
	if err == nil || !strings.Contains(err.Error(), "blocked prefixes") {
		t.Fatalf("dialling into a blocked prefix: %v, want the step skipped for blocked prefixes", err)
	}
}
