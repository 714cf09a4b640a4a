package libp2pbench

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// crustNode is a crust Service on 127.0.0.1 with one protocol, whose Events are read
// steadily; the IDs of lost peers are passed on to lost.
type crustNode struct {
	*crust.Service
	lost chan crust.NodeID
}

// newCrustNode starts a node speaking proto ("tcp" or "quic") that hands received
// messages to onMessage (nil: none are expected). b.Cleanup closes it and waits for
// its event reader.
func newCrustNode(b *testing.B, proto string, onMessage func(crust.Message)) *crustNode {
	svc, err := crust.New(crust.Config{
		ListenAddrs: []string{"127.0.0.1:0"},
		Protocols:   []string{proto},
		SendBlocks:  true,
		OnMessage:   onMessage,
		Log:         slog.New(slog.DiscardHandler),
		// Faster than the default per-peer inbound limit (1 M msgs/s).
		Limits: crust.Limits{PeerMessageRate: -1, PeerByteRate: -1},
	})
	if err != nil {
		b.Fatalf("starting a crust node: %v", err)
	}
	n := &crustNode{Service: svc, lost: make(chan crust.NodeID, 16)}
	eventsRead := make(chan struct{})
	go func() {
		defer close(eventsRead)
		for ev := range svc.Events() { // closed by Close
			if lost, ok := ev.(crust.PeerLost); ok {
				select {
				case n.lost <- lost.ID:
				default: // nobody waits for it: teardown
				}
			}
		}
	}()
	b.Cleanup(func() {
		svc.Close()
		<-eventsRead
	})
	return n
}

// connect connects n to the peer with contact c and fails the benchmark if it cannot.
func (n *crustNode) connect(b *testing.B, c crust.Contact) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := n.Connect(ctx, c); err != nil {
		b.Fatalf("crust connect: %v", err)
	}
}

// disconnect closes n's connection to peer and waits until both sides have lost
// each other and have no connection left, so that the next Connect dials afresh.
func (n *crustNode) disconnect(b *testing.B, peer *crustNode) {
	if err := n.Disconnect(peer.ID()); err != nil {
		b.Fatalf("crust disconnect: %v", err)
	}
	n.waitLost(b, peer.ID())
	peer.waitLost(b, n.ID())
	waitUntil(b, "crust connections to close", func() bool {
		return n.ConnCount(peer.ID()) == 0 && peer.ConnCount(n.ID()) == 0
	})
}

// waitLost waits for n's PeerLost event for id.
func (n *crustNode) waitLost(b *testing.B, id crust.NodeID) {
	timeout := time.After(connectTimeout)
	for {
		select {
		case got := <-n.lost:
			if got == id {
				return
			}
		case <-timeout:
			b.Fatalf("crust: no PeerLost for %s after %s", id, connectTimeout)
		}
	}
}

// benchCrustThroughput sends b.N messages of size bytes from one node to another
// over proto; the receiver counts them in Config.OnMessage, crust's fast path.
func benchCrustThroughput(b *testing.B, proto string, size int) {
	counted := make(chan int, 1)
	var got atomic.Int64
	tx := newCrustNode(b, proto, nil)
	rx := newCrustNode(b, proto, func(crust.Message) {
		if got.Add(1) == int64(b.N) {
			counted <- b.N
		}
	})
	tx.connect(b, rx.Contact())
	to, msg := rx.ID(), make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(to, msg); err != nil {
			b.Fatalf("crust send: %v", err)
		}
	}
	waitDelivered(b, counted)
}

// benchCrustSetup times Connect, which returns once the peer is connected (the
// PeerConnected moment). Between iterations the connection is closed and gone on
// both sides, untimed, so every Connect dials and handshakes afresh.
func benchCrustSetup(b *testing.B, proto string) {
	dialer := newCrustNode(b, proto, nil)
	listener := newCrustNode(b, proto, nil)
	contact := listener.Contact()
	b.ResetTimer()
	for range b.N {
		dialer.connect(b, contact)
		b.StopTimer()
		dialer.disconnect(b, listener)
		b.StartTimer()
	}
}
