package crust_test

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport"
)

// only keeps the endpoints of one protocol.
func only(c crust.Contact, proto string) crust.Contact {
	out := crust.Contact{ID: c.ID}
	for _, ep := range c.Endpoints {
		if ep.Proto == proto {
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	return out
}

func lastConnected(t *testing.T, n *testNode, id crust.NodeID) crust.PeerConnected {
	t.Helper()
	n.waitConnected(id, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.order) - 1; i >= 0; i-- {
		if pc, ok := n.order[i].(crust.PeerConnected); ok && pc.ID == id {
			return pc
		}
	}
	t.Fatal("no PeerConnected")
	return crust.PeerConnected{}
}

func stepsText(steps []crust.StepResult) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; ")
}

// With both protocols on both sides, TCP direct is the first step and wins.
func TestLadderTCPDirectWins(t *testing.T) {
	checkLeaks(t)
	a, b := newNode(t, fastConfig(), nil), newNode(t, fastConfig(), nil)
	connect(t, a, b)
	pc := lastConnected(t, a, b.ID())
	if pc.Kind != crust.StepTCPDirect || len(pc.Tried) != 0 || pc.RTT <= 0 {
		t.Errorf("connected via %q (tried %v, rtt %v), want tcp-direct first time", pc.Kind, pc.Tried, pc.RTT)
	}
	if p := a.Peers()[0]; p.Kind != crust.StepTCPDirect {
		t.Errorf("Peers says %q", p.Kind)
	}
}

// When TCP cannot connect (the port is closed, TCP is off on either side), the ladder
// goes on to QUIC, and the event says which steps came first and why they failed.
func TestLadderFallsToQUIC(t *testing.T) {
	closed := func(t *testing.T) crust.Endpoint {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ep := crust.Endpoint{Proto: "tcp", Addr: transport.AddrPortOf(ln.Addr())}
		ln.Close() // nothing listens there now: connection refused
		return ep
	}
	quicOnly := fastConfig()
	quicOnly.Protocols = []string{"quic"}
	tests := []struct {
		name       string
		cfgA, cfgB crust.Config
		contact    func(t *testing.T, b *testNode) crust.Contact
		wantTried  []string
	}{
		{"TCP port closed", fastConfig(), fastConfig(), func(t *testing.T, b *testNode) crust.Contact {
			c := only(b.Contact(), "quic")
			c.Endpoints = append([]crust.Endpoint{closed(t)}, c.Endpoints...)
			return c
		}, []string{"tcp-direct: failed", "tcp-upnp: skipped (no tcp candidates)", "tcp-punch: skipped (no tcp candidates)"}},
		{"TCP off at the dialled node", fastConfig(), quicOnly, func(t *testing.T, b *testNode) crust.Contact {
			return b.Contact()
		}, []string{"tcp-direct: skipped (no tcp candidates)", "tcp-upnp: skipped", "tcp-punch: skipped"}},
		{"TCP off at the dialler", quicOnly, fastConfig(), func(t *testing.T, b *testNode) crust.Contact {
			return b.Contact()
		}, []string{"tcp-direct: skipped (tcp is off here)", "tcp-upnp: skipped (tcp is off here)", "tcp-punch: skipped (tcp is off here)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			a, b := newNode(t, tc.cfgA, nil), newNode(t, tc.cfgB, nil)
			connectTo(t, a, tc.contact(t, b))
			pc := lastConnected(t, a, b.ID())
			t.Logf("won by %s after: %s", pc.Kind, stepsText(pc.Tried))
			if pc.Kind != crust.StepQUICDirect {
				t.Fatalf("connected via %q, want quic-direct", pc.Kind)
			}
			if len(pc.Tried) != len(tc.wantTried) {
				t.Fatalf("tried %d steps before QUIC, want %d: %s", len(pc.Tried), len(tc.wantTried), stepsText(pc.Tried))
			}
			for i, want := range tc.wantTried {
				if got := pc.Tried[i].String(); !strings.HasPrefix(got, want) {
					t.Errorf("step %d: %q, want %q…", i, got, want)
				}
			}
			// The other side settles on the same QUIC connection.
			if _, pb := waitSettled(t, a, b); pb.Kind != "quic-direct" {
				t.Errorf("B's view: %+v", pb)
			}
		})
	}
}

// A TCP endpoint that takes connections and never answers (a listener that never
// accepts: the kernel completes the TCP handshake, TLS then hangs) costs the ladder
// one StepTimeout, then QUIC connects.
func TestLadderTCPBlackholedTimesOut(t *testing.T) {
	checkLeaks(t)
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	cfg := fastConfig()
	cfg.StepTimeout = 500 * time.Millisecond
	a, b := newNode(t, cfg, nil), newNode(t, fastConfig(), nil)
	c := only(b.Contact(), "quic")
	c.Endpoints = append([]crust.Endpoint{{Proto: "tcp", Addr: transport.AddrPortOf(hole.Addr())}}, c.Endpoints...)
	start := time.Now()
	connectTo(t, a, c)
	took := time.Since(start)
	pc := lastConnected(t, a, b.ID())
	t.Logf("connected via %s in %v after: %s", pc.Kind, took, stepsText(pc.Tried))
	if pc.Kind != crust.StepQUICDirect {
		t.Fatalf("won by %q, want quic-direct", pc.Kind)
	}
	first := pc.Tried[0]
	if first.Step != crust.StepTCPDirect || first.Err == nil || !strings.Contains(first.Err.Error(), "timed out after 500ms") {
		t.Errorf("first step %v, want tcp-direct timed out after 500ms", first)
	}
	if first.Took < cfg.StepTimeout || took > cfg.StepTimeout+2*time.Second {
		t.Errorf("TCP step took %v and the connect %v; budget %v", first.Took, took, cfg.StepTimeout)
	}
}

// When every step fails, the error lists each one.
func TestLadderErrorListsSteps(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	b := newNode(t, fastConfig(), nil)
	c := b.Contact()
	id := c.ID
	b.Close() // its ports close: TCP refused, QUIC unanswered
	ctx, cancel := contextWithTimeout(20 * time.Second)
	defer cancel()
	err := a.Connect(ctx, crust.Contact{ID: id, Endpoints: c.Endpoints})
	var le *crust.LadderError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a LadderError", err)
	}
	t.Logf("%v", err)
	var names []string
	for _, s := range le.Steps {
		names = append(names, s.Step)
	}
	if strings.Join(names, ",") != "tcp-direct,tcp-upnp,tcp-punch,quic-direct,quic-punch" {
		t.Errorf("steps %v", names)
	}
	if le.Steps[0].Err == nil || le.Steps[3].Err == nil || le.Steps[1].Skipped == "" {
		t.Errorf("steps: %s", stepsText(le.Steps))
	}
}

// 100,000 messages each way over QUIC, in order, none lost or duplicated.
func TestQUICExchangeInOrder(t *testing.T) {
	checkLeaks(t)
	const count = 100_000
	type seen struct {
		mu        sync.Mutex
		next, bad uint64
	}
	check := func(s *seen) func(crust.Message) {
		return func(m crust.Message) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if binary.BigEndian.Uint64(m.Data) != s.next {
				s.bad++
			}
			s.next++
		}
	}
	var atA, atB seen
	cfg := fastConfig()
	cfg.Protocols = []string{"quic"}
	cfg.SendBlocks = true
	a, b := newNode(t, cfg, check(&atA)), newNode(t, cfg, check(&atB))
	connect(t, a, b)
	b.waitConnected(a.ID(), 1)
	if k := lastConnected(t, a, b.ID()).Kind; k != crust.StepQUICDirect {
		t.Fatalf("connected via %s", k)
	}
	var wg sync.WaitGroup
	for _, pair := range [][2]*testNode{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for i := range uint64(count) {
				binary.BigEndian.PutUint64(buf, i)
				if err := pair[0].Send(pair[1].ID(), buf); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	a.waitUntil(30*time.Second, "all messages at A", func() bool { return a.received[b.ID()] == count })
	b.waitUntil(30*time.Second, "all messages at B", func() bool { return b.received[a.ID()] == count })
	for name, s := range map[string]*seen{"A": &atA, "B": &atB} {
		if s.next != count || s.bad != 0 {
			t.Errorf("%s: %d messages, %d out of order", name, s.next, s.bad)
		}
	}
}

// Address reflection: the address a peer saw us at (its Hello's observed address)
// becomes a reflected endpoint in our Contact, a hole-punch candidate, and survives
// the Contact's text and binary forms.
func TestReflectedEndpoints(t *testing.T) {
	checkLeaks(t)
	a, b := newNode(t, fastConfig(), nil), newNode(t, fastConfig(), nil)
	connectTo(t, a, only(b.Contact(), "quic"))
	waitSettled(t, a, b)
	c := b.Contact()
	want := only(c, "quic").Endpoints[0] // A dialled this, so A saw B there
	if len(c.Reflected) == 0 || c.Reflected[0] != want {
		t.Fatalf("B's reflected endpoints %v, want %v first", c.Reflected, want)
	}
	back, err := crust.ParseContact(c.String())
	if err != nil || len(back.Reflected) != len(c.Reflected) {
		t.Fatalf("text form lost the reflected endpoints: %v %v", back, err)
	}
	bin, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var fromBin crust.Contact
	if err := fromBin.UnmarshalBinary(bin); err != nil || len(fromBin.Reflected) != len(c.Reflected) {
		t.Fatalf("binary form lost the reflected endpoints: %v %v", fromBin, err)
	}
	// The Contact works as ConnectionInfo: a third node connects with it.
	third := newNode(t, fastConfig(), nil)
	connectTo(t, third, fromBin)
}
