package crust_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport/identity"
)

// 200 rounds of both nodes dialling each other at once: each round ends with one live
// connection, the same one on both sides, and one PeerConnected on each side: over
// TCP, over QUIC, and with one side dialling TCP while the other dials QUIC.
func TestSimultaneousDial(t *testing.T) {
	all := func(c crust.Contact) crust.Contact { return c }
	tcp := func(c crust.Contact) crust.Contact { return only(c, "tcp") }
	quic := func(c crust.Contact) crust.Contact { return only(c, "quic") }
	t.Run("tcp", func(t *testing.T) { simultaneousDials(t, all, all) })
	t.Run("quic", func(t *testing.T) { simultaneousDials(t, quic, quic) })
	t.Run("tcp and quic", func(t *testing.T) { simultaneousDials(t, tcp, quic) })
}

// simultaneousDials runs the rounds; viaAB picks what A dials of B's contact, viaBA
// what B dials of A's.
func simultaneousDials(t *testing.T, viaAB, viaBA func(crust.Contact) crust.Contact) {
	checkLeaks(t)
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	// Each side sends a burst right after Connect returns, while duplicates are still
	// being closed and the live connection may still swap: every message must arrive,
	// once, in order.
	const burst = 50
	checkA, checkB := &roundChecker{}, &roundChecker{}
	a := newNode(t, fastConfig(), checkA.check)
	b := newNode(t, fastConfig(), checkB.check)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("order errors at A: %v; at B: %v", checkA.errs, checkB.errs)
		}
	})
	for round := 1; round <= rounds; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := make(chan struct{})
		errs := make(chan error, 2)
		go func() { <-start; errs <- a.Connect(ctx, viaAB(b.Contact())) }()
		go func() { <-start; errs <- b.Connect(ctx, viaBA(a.Contact())) }()
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: connect: %v", round, err)
			}
		}
		cancel()
		for seq := range burst {
			msg := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(round)), uint32(seq))
			if err := a.Send(b.ID(), msg); err != nil {
				t.Fatalf("round %d: send: %v", round, err)
			}
			if err := b.Send(a.ID(), msg); err != nil {
				t.Fatalf("round %d: send: %v", round, err)
			}
		}
		a.waitUntil(5*time.Second, "the burst", func() bool { return a.received[b.ID()] == round*burst })
		b.waitUntil(5*time.Second, "the burst", func() bool { return b.received[a.ID()] == round*burst })
		a.waitConnected(b.ID(), round)
		b.waitConnected(a.ID(), round)
		waitSettled(t, a, b)
		if ca, cb := a.connectedCount(b.ID()), b.connectedCount(a.ID()); ca != round || cb != round {
			t.Fatalf("round %d: PeerConnected events A=%d B=%d, want %d each", round, ca, cb, round)
		}
		if err := a.Disconnect(b.ID()); err != nil {
			t.Fatalf("round %d: disconnect: %v", round, err)
		}
		a.waitLost(b.ID(), round, 5*time.Second)
		b.waitLost(a.ID(), round, 5*time.Second)
		a.waitConns(b.ID(), 0)
		b.waitConns(a.ID(), 0)
	}
	for name, c := range map[string]*roundChecker{"A": checkA, "B": checkB} {
		c.mu.Lock()
		if len(c.errs) > 0 {
			t.Errorf("%s received out of order: %v", name, c.errs)
		}
		c.mu.Unlock()
	}
}

// roundChecker checks messages of the form (round, seq): in order, none missing.
type roundChecker struct {
	mu         sync.Mutex
	round, seq uint32
	errs       []string
}

func (c *roundChecker) check(m crust.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	round, seq := binary.BigEndian.Uint32(m.Data), binary.BigEndian.Uint32(m.Data[4:])
	want := c.seq + 1
	if round != c.round {
		want = 0
	}
	if seq != want && len(c.errs) < 5 {
		c.errs = append(c.errs, fmt.Sprintf("round %d: got seq %d, want %d", round, seq, want))
	}
	c.round, c.seq = round, seq
}

// waitSettled waits until a and b each hold exactly one connection to the other and
// both list the same one (a's local address is b's remote and vice versa). Closing a
// duplicate and following the other side's decision are asynchronous: until the peer's
// Goodbye and Activate arrive, either side may still be between two connections.
func waitSettled(t *testing.T, a, b *testNode) (crust.PeerInfo, crust.PeerInfo) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	find := func(n *testNode, id crust.NodeID) (crust.PeerInfo, bool) {
		for _, p := range n.Peers() {
			if p.ID == id {
				return p, true
			}
		}
		return crust.PeerInfo{}, false
	}
	for {
		pa, okA := find(a, b.ID())
		pb, okB := find(b, a.ID())
		ca, cb := crust.ConnCount(a.Service, b.ID()), crust.ConnCount(b.Service, a.ID())
		if ca == 1 && cb == 1 && okA && okB && pa.Addr == pb.LocalAddr && pb.Addr == pa.LocalAddr {
			return pa, pb
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled on one shared connection: A holds %d (%v), B holds %d (%v)", ca, pa, cb, pb)
		}
		time.Sleep(time.Millisecond) // polling the actors; each check is an actor round trip
	}
}

// Five nodes each dial all four others at once: the mesh ends with exactly 10
// connections, one per pair.
func TestFullMesh(t *testing.T) {
	checkLeaks(t)
	const size = 5
	nodes := make([]*testNode, size)
	for i := range nodes {
		nodes[i] = newNode(t, fastConfig(), nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := from.Connect(ctx, to.Contact()); err != nil {
					t.Errorf("%s → %s: %v", from.ID().Short(), to.ID().Short(), err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	type link struct{ local, remote string }
	seen := map[link]bool{}
	for i, n := range nodes {
		for _, o := range nodes[i+1:] {
			pn, _ := waitSettled(t, n, o)
			seen[link{pn.LocalAddr.String(), pn.Addr.String()}] = true
		}
	}
	for _, n := range nodes {
		if got := len(n.Peers()); got != size-1 {
			t.Errorf("%s lists %d peers, want %d", n.ID().Short(), got, size-1)
		}
		for _, o := range nodes {
			if o != n && n.connectedCount(o.ID()) != 1 {
				t.Errorf("%s saw %d PeerConnected for %s, want 1", n.ID().Short(), n.connectedCount(o.ID()), o.ID().Short())
			}
		}
	}
	if len(seen) != size*(size-1)/2 {
		t.Errorf("%d distinct live connections, want %d", len(seen), size*(size-1)/2)
	}
}

// Dialling a node under another NodeID fails with an error that names both, and
// neither side reports the peer as connected.
func TestWrongNodeID(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	b := newNode(t, fastConfig(), nil)
	c := newNode(t, fastConfig(), nil)
	impostor := crust.Contact{ID: c.ID(), Endpoints: b.Endpoints()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.Connect(ctx, impostor)
	var wrong *identity.WrongPeerError
	if !errors.As(err, &wrong) {
		t.Fatalf("connect to B's address as C: got %v, want a WrongPeerError", err)
	}
	if wrong.Want != c.ID() || wrong.Got != b.ID() {
		t.Errorf("WrongPeerError want=%s got=%s, expected want=%s got=%s", wrong.Want.Short(), wrong.Got.Short(), c.ID().Short(), b.ID().Short())
	}
	t.Logf("error: %v", err)
	// Events are ordered: once A reports C connected (a real connection made after the
	// failure), a PeerConnected for the failed attempt would have come before it.
	connect(t, a, c)
	a.waitConnected(c.ID(), 1)
	a.mu.Lock()
	for _, ev := range a.order {
		if pc, ok := ev.(crust.PeerConnected); ok && pc.ID != c.ID() {
			t.Errorf("A reported %s connected", pc.ID.Short())
		}
	}
	a.mu.Unlock()
	if n := len(b.Peers()); n != 0 {
		t.Errorf("B lists %d peers after the refused dial, want 0", n)
	}
	if n := crust.ConnCount(b.Service, a.ID()); n != 0 {
		t.Errorf("B holds %d connections to A, want 0", n)
	}
}

// Connect refuses our own ID and contacts without a usable endpoint, with errors.
func TestConnectErrors(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Connect(ctx, a.Contact()); !errors.Is(err, crust.ErrSelf) {
		t.Errorf("connect to self: %v, want ErrSelf", err)
	}
	other, _ := identity.Generate()
	if err := a.Connect(ctx, crust.Contact{ID: other.ID()}); err == nil {
		t.Error("connect without endpoints succeeded")
	}
	// Nothing listens on port 1 of loopback: connection refused, reported.
	ep, _ := crust.ParseEndpoint("tcp://127.0.0.1:1")
	if err := a.Connect(ctx, crust.Contact{ID: other.ID(), Endpoints: []crust.Endpoint{ep}}); err == nil {
		t.Error("connect to a closed port succeeded")
	} else {
		t.Logf("closed port: %v", err)
	}
	if err := a.Send(other.ID(), []byte("x")); !errors.Is(err, crust.ErrNotConnected) {
		t.Errorf("send to a stranger: %v, want ErrNotConnected", err)
	}
	if err := a.Disconnect(other.ID()); !errors.Is(err, crust.ErrNotConnected) {
		t.Errorf("disconnect a stranger: %v, want ErrNotConnected", err)
	}
	a.Close()
	if err := a.Connect(ctx, crust.Contact{ID: other.ID(), Endpoints: []crust.Endpoint{ep}}); !errors.Is(err, crust.ErrClosed) {
		t.Errorf("connect after Close: %v, want ErrClosed", err)
	}
	if err := a.Send(other.ID(), []byte("x")); !errors.Is(err, crust.ErrClosed) {
		t.Errorf("send after Close: %v, want ErrClosed", err)
	}
	a.Close() // idempotent
}

// A message larger than MaxMessageSize is refused before it is queued.
func TestMessageTooLarge(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.MaxFrameSize = 1 << 16
	a := newNode(t, cfg, nil)
	b := newNode(t, cfg, nil)
	connect(t, a, b)
	if err := a.Send(b.ID(), make([]byte, 1<<16)); !errors.Is(err, crust.ErrMessageTooLarge) {
		t.Errorf("oversized send: %v, want ErrMessageTooLarge", err)
	}
	if err := a.Send(b.ID(), make([]byte, 1<<16-16)); err != nil {
		t.Errorf("largest allowed send: %v", err)
	}
	b.waitUntil(5*time.Second, "the largest message", func() bool { return b.received[a.ID()] == 1 })
}

func ExampleService() {
	a, _ := crust.New(crust.Config{ListenAddrs: []string{"127.0.0.1:0"}})
	defer a.Close()
	b, _ := crust.New(crust.Config{ListenAddrs: []string{"127.0.0.1:0"}})
	defer b.Close()

	// A dials B by its contact: its NodeID and endpoints.
	if err := a.Connect(context.Background(), b.Contact()); err != nil {
		fmt.Println("connect:", err)
		return
	}
	a.Send(b.ID(), []byte("hello"))
	for ev := range b.Events() {
		if m, ok := ev.(crust.Message); ok {
			fmt.Printf("B got %q from A: %v\n", m.Data, m.From == a.ID())
			return
		}
	}
	// Output: B got "hello" from A: true
}

// A node listening on IPv4 and IPv6 loopback lists both endpoints for TCP and QUIC,
// all on one port number, and a peer can reach it over each of them.
func TestDualStackEndpoints(t *testing.T) {
	checkLeaks(t)
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	cfg := fastConfig()
	cfg.ListenAddrs = []string{"127.0.0.1:0", "[::1]:0"}
	b := newNode(t, cfg, nil)
	eps := b.Endpoints()
	var kinds []string
	for _, ep := range eps {
		fam := "4"
		if ep.Addr.Addr().Is6() {
			fam = "6"
		}
		kinds = append(kinds, ep.Proto+fam)
		if ep.Addr.Port() != eps[0].Addr.Port() {
			t.Errorf("endpoints %v: not all on one port", eps)
		}
	}
	if fmt.Sprint(kinds) != "[tcp4 tcp6 quic4 quic6]" {
		t.Fatalf("endpoints %v: want TCP and QUIC on IPv4 and IPv6", eps)
	}
	for _, ep := range eps {
		a := newNode(t, fastConfig(), nil)
		if ep.Addr.Addr().Is6() {
			cfgA := fastConfig()
			cfgA.ListenAddrs = []string{"[::1]:0"}
			a = newNode(t, cfgA, nil)
		}
		connectTo(t, a, crust.Contact{ID: b.ID(), Endpoints: []crust.Endpoint{ep}})
		p := a.Peers()[0]
		if p.Addr != ep.Addr || p.Kind != ep.Proto+"-direct" {
			t.Errorf("connected to %v via %s, want %v via %s-direct", p.Addr, p.Kind, ep.Addr, ep.Proto)
		}
		a.Close()
	}
}

// Peer actors of nodes that came and went are retired: memory per NodeID ever seen
// does not pile up.
func TestPeerActorsRetire(t *testing.T) {
	checkLeaks(t)
	hub := newNode(t, fastConfig(), nil)
	const visitors = 20
	for range visitors {
		v := newNode(t, fastConfig(), nil)
		connect(t, v, hub)
		hub.waitConnected(v.ID(), 1)
		v.Close()
		hub.waitLost(v.ID(), 1, 5*time.Second)
	}
	// A failed dial to a stranger leaves nothing behind either.
	stranger, _ := identity.Generate()
	ep, _ := crust.ParseEndpoint("tcp://127.0.0.1:1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Connect(ctx, crust.Contact{ID: stranger.ID(), Endpoints: []crust.Endpoint{ep}}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := crust.PeerActors(hub.Service)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d peer actors left after %d visitors left", n, visitors)
		}
		time.Sleep(time.Millisecond) // polling the supervisor; each call is an actor round trip
	}
}
