package crust_test

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// halfOpen is a TCP connection that sends nothing, as a SYN flood's that completed
// the handshake would; a goroutine reads it to see when the node closes it.
type halfOpen struct {
	conn   net.Conn
	dialed time.Time
	closed time.Time // set before done is closed
	done   chan struct{}
}

// floodHalfOpen opens n connections to addr from the address from (zero: the
// kernel's choice) and sends nothing on them. They stay open on our side until the
// test ends; lifetimes reports when the node closed each.
func floodHalfOpen(t *testing.T, addr string, n int, from net.IP) []*halfOpen {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	var (
		conns []*halfOpen
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, h := range conns {
			h.conn.Close()
		}
		wg.Wait()
	})
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("half-open connection %d: %v", len(conns)+1, err)
		}
		h := &halfOpen{conn: c, dialed: time.Now(), done: make(chan struct{})}
		conns = append(conns, h)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Read(make([]byte, 1)) // EOF or reset when the node closes it; it sends nothing
			h.closed = time.Now()
			close(h.done)
		}()
	}
	return conns
}

// waitAllClosed waits until the node has closed every connection of the flood.
func waitAllClosed(t *testing.T, flood []*halfOpen, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for i, h := range flood {
		select {
		case <-h.done:
		case <-deadline:
			t.Fatalf("half-open connection %d of %d still open after %v: the node did not close it", i+1, len(flood), timeout)
		}
	}
}

// lifetimes splits a closed flood into the connections closed at once (refused
// before any handshake) and those closed after about the handshake timeout, and
// reports any closed in between or much later.
func lifetimes(t *testing.T, flood []*halfOpen, timeout time.Duration) (refused, timedOut int) {
	t.Helper()
	for i, h := range flood {
		switch life := h.closed.Sub(h.dialed); {
		case life < timeout/2:
			refused++
		case life >= timeout-100*time.Millisecond && life < timeout+2*time.Second:
			timedOut++
		default:
			t.Errorf("half-open connection %d closed after %v, want at once or after the %v handshake timeout", i+1, life, timeout)
		}
	}
	return refused, timedOut
}

// raiseFDLimit makes sure the process may hold want file descriptors, raising its
// soft limit for the test if needed.
func raiseFDLimit(t *testing.T, want uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur >= want {
		return
	}
	if old.Max < want {
		t.Skipf("the file descriptor limit is %d (hard); the flood needs %d", old.Max, want)
	}
	raised := old
	raised.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// exchange checks that a and b, connected, trade one message each way.
func exchange(t *testing.T, a, b *testNode) {
	t.Helper()
	a.waitConnected(b.ID(), 1)
	b.waitConnected(a.ID(), 1) // the acceptor may learn of it after the dialler returned
	count := func(n *testNode, from crust.NodeID) int {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.received[from]
	}
	wantA, wantB := count(a, b.ID())+1, count(b, a.ID())+1
	if err := a.Send(b.ID(), []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(a.ID(), []byte("pong")); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(5*time.Second, "a message", func() bool { return b.received[a.ID()] >= wantB })
	a.waitUntil(5*time.Second, "a message", func() bool { return a.received[b.ID()] >= wantA })
}

const floodSize = 1000

// 1,000 connections from one address that never start their TLS handshake, with the
// per-address limit off: the node runs at most MaxPendingHandshakes handshakes at
// once, closes the rest at once and counts them, closes each half-open one after
// HandshakeTimeout, and its peers go on trading messages meanwhile. It protects the
// pending-handshake cap (without it every connection waits out the timeout: 1,000
// goroutines and TLS states) and the handshake timeout (without it the half-open
// connections are never closed and the node takes no one again).
func TestHalfOpenFlood(t *testing.T) {
	checkLeaks(t)
	raiseFDLimit(t, 4*floodSize)
	const maxPending, timeout = 32, 4 * time.Second
	cfg := fastConfig() // SourceRate -1: the per-address limit would also stop this flood
	cfg.Protocols = []string{"tcp"}
	cfg.MaxPendingHandshakes = maxPending
	cfg.HandshakeTimeout = timeout
	h := newNode(t, cfg, nil)
	pcfg := fastConfig()
	pcfg.Protocols = []string{"tcp"}
	e := newNode(t, pcfg, nil)
	connect(t, e, h)

	start := time.Now()
	flood := floodHalfOpen(t, h.Contact().Endpoints[0].Addr.String(), floodSize, nil)
	waitRefused(t, h, "pending-handshakes", floodSize-maxPending)
	if took := time.Since(start); took > timeout/2 {
		t.Fatalf("the flood took %v, too long against the %v handshake timeout to tell refusals from timeouts", took, timeout)
	}
	refusedByNode := h.Refused()["pending-handshakes"]

	// Every slot is held by the flood: an established peer is not affected, and a new
	// one is refused at once rather than left waiting.
	exchange(t, e, h)
	p := newNode(t, pcfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tried := time.Now()
	if err := p.Connect(ctx, h.Contact()); err == nil {
		t.Fatal("a new peer got a handshake while every pending slot was held")
	} else {
		t.Logf("a new peer during the flood: refused after %v: %v", time.Since(tried).Round(time.Millisecond), err)
	}
	if time.Since(start) > timeout-500*time.Millisecond {
		t.Fatalf("the checks during the flood ran past the handshake timeout (%v)", time.Since(start))
	}

	// The half-open connections time out; with the flood's sockets still open, the
	// new peer gets in.
	waitAllClosed(t, flood, timeout+5*time.Second)
	refused, timedOut := lifetimes(t, flood, timeout)
	t.Logf("%d half-open connections: %d closed at once, %d after the handshake timeout; refusals counted %v", floodSize, refused, timedOut, h.Refused())
	if timedOut != maxPending || refused != floodSize-maxPending {
		t.Errorf("%d handshakes ran at once and %d were refused, want %d and %d", timedOut, refused, maxPending, floodSize-maxPending)
	}
	if uint64(refused) != refusedByNode {
		t.Errorf("the node counted %d pending-handshakes refusals, its peers saw %d", refusedByNode, refused)
	}
	connect(t, p, h)
	exchange(t, p, h)
	exchange(t, e, h)
}

// loopbackAliasWorks reports whether this host routes 127.0.0.2 to itself, so that a
// connection can come from it.
func loopbackAliasWorks(t *testing.T, alias net.IP) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: alias}, Timeout: time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Logf("dialling from %s: %v", alias, err)
		return false
	}
	defer c.Close()
	in, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	return in.RemoteAddr().(*net.TCPAddr).IP.Equal(alias)
}

// The same flood from one address with the default SourceRate: beyond its burst the
// address is refused ("source-rate") before it takes a handshake slot, so a peer from
// another address connects and trades messages while the flood's admitted half-open
// connections still wait out their timeout. It protects the per-address limit:
// without it the flood takes every handshake slot and the peer is refused.
//
// The flood comes from 127.0.0.2 and the peer from 127.0.0.1: crust dials TCP from
// the kernel's choice of source address, 127.0.0.1 toward 127.0.0.1, whatever its
// ListenAddrs.
func TestHalfOpenFloodSourceRate(t *testing.T) {
	attacker := net.IPv4(127, 0, 0, 2)
	if !loopbackAliasWorks(t, attacker) {
		t.Skipf("this host does not route %s to itself", attacker)
	}
	for _, tc := range []struct {
		name       string
		maxPending int
	}{
		// A cap above the source burst (64): the flood holds 64 slots, the peer finds
		// one free.
		{name: "pending 128", maxPending: 128},
		// The defaults: SourceBurst (64) equals MaxPendingHandshakes (64), so without
		// a per-address cap one address within its rate would hold every slot for
		// HandshakeTimeout. It holds a quarter ("source-pending"); the peer finds a
		// free one.
		{name: "default pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			raiseFDLimit(t, 4*floodSize)
			const timeout = 4 * time.Second
			cfg := fastConfig()
			cfg.Protocols = []string{"tcp"}
			cfg.Limits = crust.Limits{} // the default SourceRate, 16/s with bursts of 64
			cfg.MaxPendingHandshakes = tc.maxPending
			cfg.HandshakeTimeout = timeout
			h := newNode(t, cfg, nil)

			start := time.Now()
			flood := floodHalfOpen(t, h.Contact().Endpoints[0].Addr.String(), floodSize, attacker)
			floodTook := time.Since(start)
			// The burst, and the rate while the flood ran, get through; the rest not.
			mostAdmitted := 64 + int(16*floodTook.Seconds()) + 1
			// Wait for the node to have refused them, for whatever reason: the peer's
			// fate is the main check, the reasons are checked after.
			deadline := time.Now().Add(5 * time.Second)
			for r := h.Refused(); r["source-rate"]+r["source-pending"]+r["pending-handshakes"] < uint64(floodSize-mostAdmitted); r = h.Refused() {
				if time.Now().After(deadline) {
					t.Fatalf("%v refused of a flood of %d, want at least %d", r, floodSize, floodSize-mostAdmitted)
				}
				time.Sleep(5 * time.Millisecond) // polling a count, not a delay
			}

			pcfg := fastConfig()
			pcfg.Protocols = []string{"tcp"}
			p := newNode(t, pcfg, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Connect(ctx, h.Contact()); err != nil {
				t.Fatalf("a peer from another address, during the flood (refusals %v): %v", h.Refused(), err)
			}
			exchange(t, p, h)
			during := time.Now()

			waitAllClosed(t, flood, timeout+5*time.Second)
			refused, timedOut := lifetimes(t, flood, timeout)
			firstTimedOut := time.Time{}
			for _, f := range flood {
				if f.closed.Sub(f.dialed) >= timeout/2 && (firstTimedOut.IsZero() || f.closed.Before(firstTimedOut)) {
					firstTimedOut = f.closed
				}
			}
			t.Logf("flood of %d from %s in %v: %d closed at once, %d after the handshake timeout; the peer had traded messages %v before the first timed out; refusals %v",
				floodSize, attacker, floodTook.Round(time.Millisecond), refused, timedOut, firstTimedOut.Sub(during).Round(time.Millisecond), h.Refused())
			if !during.Before(firstTimedOut) {
				t.Errorf("the peer got in only after the flood's half-open connections timed out")
			}
			if got := h.Refused()["source-rate"] + h.Refused()["source-pending"]; got != uint64(refused) || timedOut > mostAdmitted {
				t.Errorf("%d source-rate and source-pending refusals counted, %d connections closed at once, %d admitted (at most %d)", got, refused, timedOut, mostAdmitted)
			}
			if n := h.Refused()["pending-handshakes"]; n != 0 {
				t.Errorf("%d pending-handshakes refusals: the flood reached the handshake cap", n)
			}
		})
	}
}
