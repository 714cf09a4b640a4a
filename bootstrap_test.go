package crust_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/bootstrap"
)

// waitLog waits until the node's log contains s; the log is the only sign of some
// decisions (the bootstrap ending, say), so the test polls it.
func (n *testNode) waitLog(s string, timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(n.logs.String(), s) {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: timed out after %v waiting for log %q; log:\n%s", n.ID().Short(), timeout, s, n.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func peerInfo(n *testNode, id crust.NodeID) (crust.PeerInfo, bool) {
	for _, p := range n.Peers() {
		if p.ID == id {
			return p, true
		}
	}
	return crust.PeerInfo{}, false
}

// A node that was connected to B and C restarts with no contacts configured and finds
// both again from its bootstrap file alone.
func TestBootstrapRestartReconnectsFromFile(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	b := newNode(t, fastConfig(), nil)
	c := newNode(t, fastConfig(), nil)
	cfgA := fastConfig()
	cfgA.DataDir = dir
	a := newNode(t, cfgA, nil)
	id := a.ID()
	connect(t, a, b)
	connect(t, a, c)
	a.Close()
	b.waitLost(id, 1, 5*time.Second)
	c.waitLost(id, 1, 5*time.Second)

	data, err := os.ReadFile(filepath.Join(dir, bootstrap.DefaultFileName))
	if err != nil {
		t.Fatalf("the bootstrap file was not written at stop: %v", err)
	}
	for _, n := range []*testNode{b, c} {
		if !bytes.Contains(data, []byte(n.ID().String())) {
			t.Fatalf("bootstrap file lacks %s:\n%s", n.ID().Short(), data)
		}
	}

	a2 := newNode(t, cfgA, nil) // same data dir, no contacts, no beacon
	if a2.ID() != id {
		t.Fatalf("restarted node has ID %s, want %s", a2.ID().Short(), id.Short())
	}
	a2.waitConnected(b.ID(), 1)
	a2.waitConnected(c.ID(), 1)
	b.waitConnected(id, 2)
	c.waitConnected(id, 2)
	entries := a2.BootstrapEntries()
	if len(entries) != 2 || entries[0].LastSuccess.IsZero() || entries[1].LastSuccess.IsZero() {
		t.Fatalf("bootstrap entries after restart = %+v, want B and C with a last success", entries)
	}
}

// Hard-coded contacts are dialled at start without any data directory.
// A node whose only contact is down when it starts keeps trying, backing off, and
// connects once the contact is up, without being told.
func TestBootstrapRetriesUntilAContactAnswers(t *testing.T) {
	checkLeaks(t)
	cfgB := fastConfig()
	cfgB.DataDir = t.TempDir() // the same identity after the restart
	b := newNode(t, cfgB, nil)
	contact := b.Contact()
	b.Close()
	cfgA := fastConfig()
	cfgA.Contacts = []crust.Contact{contact}
	a := newNode(t, cfgA, nil)
	a.waitLog("no peer connected; trying the contacts again", 5*time.Second)
	if len(a.Peers()) != 0 {
		t.Fatalf("A has peers with its only contact down: %v", a.Peers())
	}
	cfgB.ListenAddrs = []string{contact.Endpoints[0].Addr.String()}
	b2 := newNode(t, cfgB, nil)
	a.waitConnected(b2.ID(), 1)
}

func TestBootstrapHardCodedContacts(t *testing.T) {
	checkLeaks(t)
	b := newNode(t, fastConfig(), nil)
	c := newNode(t, fastConfig(), nil)
	cfg := fastConfig()
	cfg.Contacts = []crust.Contact{b.Contact(), c.Contact()}
	a := newNode(t, cfg, nil)
	a.waitConnected(b.ID(), 1)
	a.waitConnected(c.ID(), 1)
	if a.BootstrapEntries() != nil {
		t.Fatalf("a node without a data dir has bootstrap entries %v", a.BootstrapEntries())
	}
}

// The bootstrap stops dialling once BootstrapPeers peers are up.
func TestBootstrapStopsWhenEnoughPeers(t *testing.T) {
	checkLeaks(t)
	var contacts []crust.Contact
	var nodes []*testNode
	for range 4 {
		n := newNode(t, fastConfig(), nil)
		nodes = append(nodes, n)
		contacts = append(contacts, n.Contact())
	}
	cfg := fastConfig()
	cfg.Contacts = contacts
	cfg.BootstrapParallel = 1
	cfg.BootstrapPeers = 2
	a := newNode(t, cfg, nil)
	a.waitLog("bootstrap: enough peers connected", 5*time.Second)
	a.waitLog("bootstrap: done", 5*time.Second)
	if got := len(a.Peers()); got != 2 {
		t.Fatalf("%d peers after the bootstrap, want 2", got)
	}
	for _, n := range nodes[2:] {
		if got := crust.ConnCount(a.Service, n.ID()); got != 0 {
			t.Fatalf("%d connections to %s, which the bootstrap should not have dialled", got, n.ID().Short())
		}
	}
}

// Two Services on one data directory: the second fails at once, naming the lock.
func TestBootstrapDataDirLocked(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.DataDir = t.TempDir()
	newNode(t, cfg, nil)
	cfg.Log = slog.New(slog.DiscardHandler)
	svc, err := crust.New(cfg)
	if err == nil {
		svc.Close()
		t.Fatal("a second Service on the same data dir started")
	}
	if !errors.Is(err, crust.ErrLocked) || !strings.Contains(err.Error(), bootstrap.LockFileName) {
		t.Fatalf("second Service: %v, want ErrLocked naming %s", err, bootstrap.LockFileName)
	}
}

// A garbage, truncated or empty bootstrap file gives a warning and a set-aside copy
// with the original bytes, and the node runs with its hard-coded contacts.
func TestBootstrapCorruptFile(t *testing.T) {
	checkLeaks(t)
	b := newNode(t, fastConfig(), nil)
	for name, content := range map[string][]byte{
		"garbage":   []byte("\x00\xffnot json at all"),
		"truncated": []byte(`{"version":1,"contacts":[{"id":"`),
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, bootstrap.DefaultFileName)
			if err := os.WriteFile(file, content, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := fastConfig()
			cfg.DataDir = dir
			cfg.Contacts = []crust.Contact{b.Contact()}
			a := newNode(t, cfg, nil)
			a.waitConnected(b.ID(), 1)
			if !strings.Contains(a.logs.String(), "level=WARN") || !strings.Contains(a.logs.String(), "corrupt") {
				t.Fatalf("no warning about the corrupt file in the log:\n%s", a.logs.String())
			}
			aside, _ := filepath.Glob(file + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("set-aside copies: %v, want one", aside)
			}
			got, err := os.ReadFile(aside[0])
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("set-aside copy holds %q (%v), want the original %q", got, err, content)
			}
			a.Close()
		})
	}
}

// The whitelist and blacklist refuse nodes both ways: dialling them and being dialled.
func TestWhitelistBlacklist(t *testing.T) {
	checkLeaks(t)
	b := newNode(t, fastConfig(), nil)
	c := newNode(t, fastConfig(), nil)
	cfg := fastConfig()
	cfg.Whitelist = []crust.NodeID{b.ID(), c.ID()}
	cfg.Blacklist = []crust.NodeID{c.ID()} // wins over the whitelist
	a := newNode(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Connect(ctx, c.Contact()); !errors.Is(err, crust.ErrBlocked) {
		t.Fatalf("dialling a blacklisted node: %v, want ErrBlocked", err)
	}
	if err := c.Connect(ctx, a.Contact()); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("a blacklisted node dialling us: %v, want a refusal saying blocked", err)
	}
	connect(t, a, b) // whitelisted
	d := newNode(t, fastConfig(), nil)
	if err := a.Connect(ctx, d.Contact()); !errors.Is(err, crust.ErrBlocked) {
		t.Fatalf("dialling a node off the whitelist: %v, want ErrBlocked", err)
	}
	if err := d.Connect(ctx, a.Contact()); err == nil {
		t.Fatal("a node off the whitelist got connected by dialling us")
	}
	if n := a.connectedCount(c.ID()) + a.connectedCount(d.ID()); n != 0 {
		t.Fatalf("blocked nodes raised %d PeerConnected events", n)
	}
}

// Peers counts messages and payload bytes each way.
func TestPeerTrafficCounters(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	b := newNode(t, fastConfig(), nil)
	connect(t, a, b)
	b.waitConnected(a.ID(), 1)
	const n, size = 100, 1000
	for range n {
		if err := a.Send(b.ID(), make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	b.waitUntil(5*time.Second, "messages", func() bool { return b.received[a.ID()] == n })
	in, _ := peerInfo(b, a.ID())
	if in.MsgsIn != n || in.BytesIn != n*size {
		t.Fatalf("receiver counts %d messages, %d bytes in; want %d, %d", in.MsgsIn, in.BytesIn, n, n*size)
	}
	// The sender's writer counts after writing; its last batch may still be counting.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := peerInfo(a, b.ID())
		if out.MsgsOut == n && out.BytesOut == n*size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sender counts %d messages, %d bytes out; want %d, %d", out.MsgsOut, out.BytesOut, n, n*size)
		}
		time.Sleep(time.Millisecond)
	}
}

// Service.Traffic counts every session's messages and payload bytes, through both
// ways a message is delivered (Events and OnMessage), and keeps them when the
// session ends and its counters in Peers go.
func TestServiceTrafficOutlivesSessions(t *testing.T) {
	checkLeaks(t)
	var handled atomic.Int64 // messages A's OnMessage saw
	cfgA := fastConfig()
	cfgA.OnMessage = func(crust.Message) { handled.Add(1) }
	a := newNode(t, cfgA, nil)
	b := newNode(t, fastConfig(), nil)
	// waitTraffic polls n.Traffic until it is want: a sender counts a batch once its
	// write returns, which may be after the receiver has it.
	waitTraffic := func(n *testNode, want crust.Traffic) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := n.Traffic()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Traffic() = %+v, want %+v", n.ID().Short(), got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitHandled := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for handled.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("A's OnMessage saw %d messages, want %d", handled.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send := func(from, to *testNode, n, size int) {
		t.Helper()
		for range n {
			if err := from.Send(to.ID(), make([]byte, size)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Session 1: A sends 100 × 1000 bytes, B 50 × 10; A says goodbye.
	connect(t, a, b)
	b.waitConnected(a.ID(), 1)
	send(a, b, 100, 1000)
	send(b, a, 50, 10)
	b.waitUntil(5*time.Second, "A's messages", func() bool { return b.received[a.ID()] == 100 })
	waitHandled(50)
	if err := a.Disconnect(b.ID()); err != nil {
		t.Fatal(err)
	}
	a.waitLost(b.ID(), 1, 5*time.Second)
	b.waitLost(a.ID(), 1, 5*time.Second)
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("peers after the disconnect: A %v, B %v", a.Peers(), b.Peers())
	}
	waitTraffic(a, crust.Traffic{BytesIn: 500, BytesOut: 100_000, MsgsIn: 50, MsgsOut: 100})
	waitTraffic(b, crust.Traffic{BytesIn: 100_000, BytesOut: 500, MsgsIn: 100, MsgsOut: 50})

	// Session 2, begun and ended with nothing reading the counters in between: B
	// sends 3 × 7 bytes, A 1 × 1; B says goodbye.
	connect(t, b, a)
	a.waitConnected(b.ID(), 2)
	send(b, a, 3, 7)
	send(a, b, 1, 1)
	b.waitUntil(5*time.Second, "A's message", func() bool { return b.received[a.ID()] == 101 })
	waitHandled(53)
	if err := b.Disconnect(a.ID()); err != nil {
		t.Fatal(err)
	}
	a.waitLost(b.ID(), 2, 5*time.Second)
	b.waitLost(a.ID(), 2, 5*time.Second)
	waitTraffic(a, crust.Traffic{BytesIn: 521, BytesOut: 100_001, MsgsIn: 53, MsgsOut: 101})
	waitTraffic(b, crust.Traffic{BytesIn: 100_001, BytesOut: 521, MsgsIn: 101, MsgsOut: 53})
}

// A failed dial counts against the contact in the cache; a success resets the count.
func TestBootstrapRecordsFailures(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.DataDir = t.TempDir()
	cfg.StepTimeout = time.Second
	a := newNode(t, cfg, nil)
	b := newNode(t, fastConfig(), nil)
	contact := b.Contact()
	connect(t, a, b)
	b.Close()
	a.waitLost(contact.ID, 1, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, contact); err == nil {
		t.Fatal("connected to a closed node")
	}
	// The outcome reaches the Bootstrap actor after Connect has returned.
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries := a.BootstrapEntries()
		if len(entries) == 1 && entries[0].ID == contact.ID && entries[0].Failures == 1 && !entries[0].LastSuccess.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap entries %+v, want B with one failure after its success", entries)
		}
		time.Sleep(time.Millisecond)
	}
}
