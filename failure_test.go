package crust_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// helperEnv makes the test binary run a bare node instead of the tests (see TestMain).
const helperEnv = "CRUST_TEST_HELPER_NODE"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "beacon":
		runBeaconHelper()
	default:
		runHelperNode()
	}
}

// runHelperNode runs a node on loopback, prints its contact and serves until killed.
func runHelperNode() {
	svc, err := crust.New(crust.Config{ListenAddrs: []string{"127.0.0.1:0"}})
	if err != nil {
		os.Exit(2)
	}
	os.Stdout.WriteString(svc.Contact().String() + "\n")
	for range svc.Events() {
	}
}

// startChildNode re-executes the test binary with env set, to run a node in a process
// of its own, and returns it with the contact it prints on its first line. The
// process is killed when the test ends.
func startChildNode(t *testing.T, env string) (*exec.Cmd, crust.Contact) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's contact: %v", err)
	}
	contact, err := crust.ParseContact(line)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, contact
}

// A peer process killed with SIGKILL is reported lost: the kernel resets its sockets.
func TestPeerProcessKilled(t *testing.T) {
	checkLeaks(t)
	cmd, contact := startChildNode(t, helperEnv+"=1")
	a := newNode(t, fastConfig(), nil)
	connectTo(t, a, contact)
	a.waitConnected(contact.ID, 1)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	a.waitLost(contact.ID, 1, fastConfig().PeerTimeout+fastConfig().KeepaliveInterval+time.Second)
	t.Logf("lost: %v", a.lostReasons(contact.ID))
	if err := a.Send(contact.ID, []byte("x")); !errors.Is(err, crust.ErrNotConnected) {
		t.Errorf("send to the dead peer: %v, want ErrNotConnected", err)
	}
}

// A peer that goes silent (its packets dropped, sockets open) is lost within
// PeerTimeout plus one keepalive interval, on both sides.
func TestPeerBlackholed(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	a := newNode(t, cfg, nil)
	b := newNode(t, cfg, nil)
	proxy := newProxy(t, b.Endpoints()[0].Addr.String())
	connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	b.waitConnected(a.ID(), 1)
	// Traffic flows: a message goes through before the hole opens.
	if err := a.Send(b.ID(), []byte("before")); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(5*time.Second, "a message", func() bool { return b.received[a.ID()] == 1 })

	proxy.blackhole()
	start := time.Now()
	limit := cfg.PeerTimeout + cfg.KeepaliveInterval
	a.waitLost(b.ID(), 1, limit+2*time.Second)
	b.waitLost(a.ID(), 1, limit+2*time.Second)
	elapsed := time.Since(start)
	t.Logf("lost after %v (timeout %v + keepalive %v): A: %v, B: %v", elapsed, cfg.PeerTimeout, cfg.KeepaliveInterval, a.lostReasons(b.ID()), b.lostReasons(a.ID()))
	if elapsed > limit+500*time.Millisecond {
		t.Errorf("lost after %v, want within %v", elapsed, limit)
	}
	if r := a.lostReasons(b.ID()); !strings.Contains(r[0], "timeout") {
		t.Errorf("reason %q does not say timeout", r[0])
	}
}

// Bad input on one connection closes that connection with a logged reason; the node
// keeps serving everyone else.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	checkLeaks(t)
	b := newNode(t, fastConfig(), nil)
	addr := b.Endpoints()[0].Addr.String()

	cases := []struct {
		name string
		// run talks to B and returns the connection, which B must then close.
		run     func(t *testing.T) net.Conn
		wantLog string
	}{
		{"oversized frame", func(t *testing.T) net.Conn {
			return greetedClient(t, addr, func(w io.Writer) { w.Write([]byte{0x7f, 0xff, 0xff, 0xff}) })
		}, "frame larger than the maximum"},
		{"garbage envelope", func(t *testing.T) net.Conn {
			return greetedClient(t, addr, func(w io.Writer) { w.Write([]byte{0, 0, 0, 3, 0xc1, 0xc1, 0xc1}) })
		}, "malformed frame"},
		{"second Hello", func(t *testing.T) net.Conn {
			return greetedClient(t, addr, func(w io.Writer) {
				fw := wire.NewWriter(w, 1024)
				fw.Write(&wire.Hello{Version: wire.Version})
				fw.Flush()
			})
		}, "unexpected"},
		{"TLS client without certificate", func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{identity.ALPN}, MinVersion: tls.VersionTLS13})
			if err != nil {
				return nil // refused during the handshake: closed, as it should be
			}
			return c
		}, ""},
		{"not TLS at all", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			return c
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if c != nil {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := io.Copy(io.Discard, c)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("B did not close the connection")
				}
			}
			if tc.wantLog != "" && !strings.Contains(b.logs.String(), tc.wantLog) {
				t.Errorf("B logged no reason containing %q", tc.wantLog)
			}
		})
	}
	// B still serves: a real node connects and trades messages.
	c := newNode(t, fastConfig(), nil)
	connect(t, c, b)
	if err := c.Send(b.ID(), []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(5*time.Second, "a message from C", func() bool { return b.received[c.ID()] == 1 })
}

// greetedClient connects to addr with TLS and a fresh identity, exchanges Hellos,
// then lets bad write whatever it wants.
func greetedClient(t *testing.T, addr string, bad func(io.Writer)) net.Conn {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := id.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fw := wire.NewWriter(c, 1024)
	nid := id.ID()
	fw.Write(&wire.Hello{Version: wire.Version, NodeID: nid[:]})
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.NewReader(c, 1024, 1<<20).Read(); err != nil {
		t.Fatalf("reading B's Hello: %v", err)
	}
	bad(c)
	return c
}

// A receiver that stops reading events: the sender's Send reports the full queue, and
// its memory stays bounded however much it tries to send.
func TestSlowReceiverBoundsSender(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.PeerTimeout = time.Minute // the stalled peer is slow, not dead
	cfg.SendQueueMessages = 1024
	cfg.SendQueueBytes = 1 << 20
	a := newNode(t, cfg, nil)

	slow := cfg
	slow.EventBuffer, slow.MaxPendingMessages = 16, 64
	b, err := crust.New(slow) // nobody reads b.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	connectTo(t, a, b.Contact())

	msg := make([]byte, 1024)
	const attempts = 300_000 // 300 MiB if nothing pushed back
	var accepted, full int
	heapBefore := heapInUse()
	for range attempts {
		switch err := a.Send(b.ID(), msg); {
		case err == nil:
			accepted++
		case errors.Is(err, crust.ErrQueueFull):
			full++
		default:
			t.Fatalf("send: %v", err)
		}
	}
	growth := int64(heapInUse()) - int64(heapBefore)
	t.Logf("accepted %d of %d sends (%d refused as full); heap grew %.1f MiB", accepted, attempts, full, float64(growth)/(1<<20))
	if full == 0 {
		t.Fatal("Send never reported a full queue")
	}
	// Accepted messages sit in the queue (≤ 1 MiB), in kernel socket buffers and in
	// B's bounded read path; the rest must have been refused.
	if accepted > 40_000 {
		t.Errorf("%d messages accepted: the send path is not bounded", accepted)
	}
	if growth > 48<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func connectTo(t *testing.T, from *testNode, to crust.Contact) {
	t.Helper()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := from.Connect(ctx, to); err != nil {
		t.Fatalf("connecting to %s: %v", to.ID.Short(), err)
	}
}

// orderedIdentities returns two identities, the smaller NodeID first.
func orderedIdentities(t *testing.T) (*identity.Identity, *identity.Identity) {
	t.Helper()
	a, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if a.ID().Less(b.ID()) {
		return a, b
	}
	return b, a
}

// The deciding (smaller) node dies silently and comes back with the same key before
// the other side noticed: its new connection says nothing precedes it, so the larger
// node ends the old session (PeerLost) and takes the new one (PeerConnected), and the
// new session's messages arrive.
func TestPeerRestartsWithSameKey(t *testing.T) {
	checkLeaks(t)
	small, large := orderedIdentities(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.PeerTimeout = time.Minute // the old connection must not time out first
	cfg.ShutdownGrace = 50 * time.Millisecond
	cs, cl := cfg, cfg
	cs.Identity, cl.Identity = small, large
	l := newNode(t, cl, nil)
	s1 := newNode(t, cs, nil)
	proxy := newProxy(t, l.Endpoints()[0].Addr.String())
	connectTo(t, s1, crust.Contact{ID: l.ID(), Endpoints: []crust.Endpoint{proxy.endpoint()}})
	l.waitConnected(small.ID(), 1)
	proxy.blackhole()
	s1.Close() // its Goodbye vanishes in the hole: as a crash
	s2 := newNode(t, cs, nil)
	connectTo(t, s2, l.Contact())
	for range 5 {
		if err := s2.Send(l.ID(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	l.waitUntil(10*time.Second, "the new session's messages", func() bool { return l.received[small.ID()] == 5 })
	l.waitConnected(small.ID(), 2)
	if got := l.lostReasons(small.ID()); len(got) != 1 || !strings.Contains(got[0], "new session") {
		t.Errorf("L's PeerLost for the old session: %v", got)
	}
	if got := s2.lostReasons(large.ID()); len(got) != 0 {
		t.Errorf("the restarted node lost its new connection: %v", got)
	}
	// The old session's PeerLost came before the new session's PeerConnected.
	l.mu.Lock()
	var kinds []string
	for _, ev := range l.order {
		switch ev := ev.(type) {
		case crust.PeerConnected:
			if ev.ID == small.ID() {
				kinds = append(kinds, "connected")
			}
		case crust.PeerLost:
			kinds = append(kinds, "lost")
		}
	}
	l.mu.Unlock()
	if strings.Join(kinds, ",") != "connected,lost,connected" {
		t.Errorf("L's events %v, want connected,lost,connected", kinds)
	}
}

// The larger node disconnects while the smaller's Activate and first data are in
// flight on a connection still waiting for it: the refused connection's data is
// dropped, its Goodbye is read, and the pair can connect again at once. Nothing is
// lost silently: each message the smaller sent is either delivered or given back to
// it (the Goodbye of a connection that never went live says its data was dropped).
func TestDisconnectWhileActivateInFlight(t *testing.T) {
	checkLeaks(t)
	small, large := orderedIdentities(t)
	cfg := fastConfig()
	cs, cl := cfg, cfg
	cs.Identity, cl.Identity = small, large
	s := newNode(t, cs, nil)
	l := newNode(t, cl, nil)
	const perRound = 50
	accepted, backBefore, dropped := 0, 0, 0 // dropped: rounds in which messages came back
	for round := 1; round <= 20; round++ {
		connect(t, s, l)
		for range perRound {
			if s.Send(l.ID(), []byte("early")) == nil {
				accepted++
			}
		}
		l.waitConns(s.ID(), 1) // L holds the connection, maybe still waiting for Activate
		if err := l.Disconnect(s.ID()); err != nil {
			t.Fatal(err)
		}
		l.waitConns(s.ID(), 0)
		s.waitConns(l.ID(), 0)
		s.waitUntil(5*time.Second, "S's PeerLost", func() bool { return len(s.lost[l.ID()]) == round })
		// Everything S accepted was delivered to L or given back to S.
		var got, back int
		deadline := time.Now().Add(5 * time.Second)
		for {
			l.mu.Lock()
			got = l.received[s.ID()]
			l.mu.Unlock()
			s.mu.Lock()
			back = s.undelivered[l.ID()]
			s.mu.Unlock()
			if got+back >= accepted || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got+back != accepted {
			t.Fatalf("round %d: %d messages delivered and %d given back, want the %d accepted", round, got, back, accepted)
		}
		if back > backBefore {
			dropped++
		}
		backBefore = back
	}
	t.Logf("20 rounds: messages given back in %d of them", dropped)
	connect(t, l, s)
	waitSettled(t, l, s)
}
