package crust_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/transport/identity"
)

// freeUDPPort returns a UDP port number nothing on loopback uses right now.
func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// Five nodes on one host share a beacon port and broadcast on loopback only
// (127.255.255.255). With no contact given, they find each other by beacon alone and
// end in a full mesh: 10 connections, one per pair, made by tcp-direct.
func TestBeaconDiscoveryFullMesh(t *testing.T) {
	checkLeaks(t)
	port := freeUDPPort(t)
	const size = 5
	nodes := make([]*testNode, size)
	for i := range nodes {
		cfg := fastConfig()
		cfg.BeaconAddrs = []netip.Addr{netip.MustParseAddr("127.255.255.255")}
		cfg.BeaconPort = port
		nodes[i] = newNode(t, cfg, nil)
	}
	type link struct{ local, remote string }
	seen := map[link]bool{}
	for i, n := range nodes {
		for _, o := range nodes[i+1:] {
			n.waitUntil(10*time.Second, "a beacon peer", func() bool { return n.connected[o.ID()] >= 1 })
			pn, _ := waitSettled(t, n, o)
			if pn.Kind != crust.StepTCPDirect {
				t.Errorf("beacon peer connected via %s, want tcp-direct", pn.Kind)
			}
			seen[link{pn.LocalAddr.String(), pn.Addr.String()}] = true
		}
	}
	if len(seen) != size*(size-1)/2 {
		t.Errorf("%d distinct connections, want %d", len(seen), size*(size-1)/2)
	}
	for _, n := range nodes {
		if got := len(n.Peers()); got != size-1 {
			t.Errorf("%s lists %d peers, want %d", n.ID().Short(), got, size-1)
		}
	}
}

// A flood of beacon queries from thousands of made-up nodes: the node answers at most
// its reply rate, dials at most its report rate, and keeps serving connections.
func TestBeaconFlood(t *testing.T) {
	checkLeaks(t)
	port := freeUDPPort(t)
	bcast := []netip.Addr{netip.MustParseAddr("127.255.255.255")}
	cfg := fastConfig()
	cfg.BeaconAddrs, cfg.BeaconPort = bcast, port
	node := newNode(t, cfg, nil)

	ctx, cancel := contextWithTimeout(20 * time.Second)
	defer cancel()
	observerID, _ := identity.Generate()
	observer, err := beacon.Listen(ctx, beacon.Config{ID: observerID.ID(), Port: port, Addrs: bcast})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	replies, queries := 0, 0
	firstReply := make(chan struct{})
	heard := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		observer.Serve(ctx, func(p beacon.Packet, _ netip.AddrPort) {
			if p.Type == beacon.Query {
				mu.Lock()
				queries++
				mu.Unlock()
				select {
				case heard <- struct{}{}:
				default:
				}
			}
			if p.Type == beacon.Reply && p.ID == node.ID() {
				mu.Lock()
				if replies++; replies == 1 {
					close(firstReply)
				}
				mu.Unlock()
			}
		})
	}()
	defer func() { cancel(); <-done }()

	const flood, chunk = 3000, 100
	start := time.Now()
	for i := range flood {
		var id crust.NodeID
		binary.BigEndian.PutUint64(id[:], uint64(i+1))
		// Port 1: nothing listens there, so each dial it draws fails at once.
		if err := observer.Send(beacon.Packet{Type: beacon.Query, ID: id, TCPPort: 1}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%chunk == 0 {
			// Pace the flood by what the observer takes in, so the loopback socket
			// buffers (the node's and the observer's) are not simply overrun and the
			// node's replies can be counted.
			paceUntil := time.After(500 * time.Millisecond)
			for {
				mu.Lock()
				caught := queries >= (i+1)*9/10
				mu.Unlock()
				if caught {
					break
				}
				select {
				case <-heard:
					continue
				case <-paceUntil:
				}
				break
			}
		}
	}
	select {
	case <-firstReply:
	case <-ctx.Done():
		t.Fatal("no reply to the flood at all")
	}
	// The node still serves: a real peer connects and trades a message.
	peer := newNode(t, fastConfig(), nil)
	connect(t, peer, node)
	if err := peer.Send(node.ID(), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	node.waitUntil(5*time.Second, "a message", func() bool { return node.received[peer.ID()] == 1 })
	elapsed := time.Since(start)
	mu.Lock()
	got := replies
	mu.Unlock()
	// Each node reported is dialled once: a run of the ladder, which starts with
	// tcp-direct.
	dials := int(node.LadderStats()["tcp-direct"].Attempts)
	// Replies and reports per started second of the test, plus one window of slack.
	limit, dialLimit := 10*(int(elapsed/time.Second)+2), 20*(int(elapsed/time.Second)+2)
	t.Logf("%d queries in, %d replies out (limit %d), %d nodes dialled (limit %d) in %v", flood, got, limit, dials, dialLimit, elapsed.Round(time.Millisecond))
	if got > limit {
		t.Errorf("%d replies to %d queries in %v: not rate-limited", got, flood, elapsed)
	}
	if dials > dialLimit {
		t.Errorf("%d of the %d nodes heard were dialled in %v: more than the report rate allows (%d)", dials, flood, elapsed, dialLimit)
	}
	if n := node.Refused()["beacon-rate"]; n == 0 {
		t.Errorf("Refused counts no beacon-rate refusals after the flood")
	}
}
