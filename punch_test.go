package crust_test

import (
	"context"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/nat/stun/stuntest"
)

// punchConfig is a loopback node on one protocol whose STUN server tells it its
// endpoint, so its contact has a reflected endpoint to punch toward.
func punchConfig(proto string, srv *stuntest.Server) crust.Config {
	cfg := fastConfig()
	cfg.Protocols = []string{proto}
	server := srv.TCPAddr()
	if proto == "quic" {
		server = srv.UDPAddr()
	}
	cfg.StunServers = []string{server.String()}
	return cfg
}

// waitReflected waits for the node's STUN answer and returns its contact with the
// reflected endpoints only: what a peer behind a NAT would have to go on.
func waitReflected(t *testing.T, n *testNode) crust.Contact {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(n.NAT().STUN) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no STUN answer: %+v", n.ID().Short(), n.NAT())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := n.Contact()
	return crust.Contact{ID: c.ID, Reflected: n.NAT().STUN, NAT: c.NAT}
}

func kindOf(t *testing.T, n *testNode, id crust.NodeID) string {
	t.Helper()
	for _, ev := range n.events() {
		if pc, ok := ev.(crust.PeerConnected); ok && pc.ID == id {
			return pc.Kind
		}
	}
	return ""
}

// A and B know only each other's reflected endpoints and share a rendezvous R: the
// ladder skips the direct steps, A asks R to introduce it, both punch, and both end
// on one punched connection.
func TestPunchThroughRendezvous(t *testing.T) {
	for _, proto := range []string{"tcp", "quic"} {
		t.Run(proto, func(t *testing.T) {
			checkLeaks(t)
			srv := stuntest.New(t, stuntest.Config{})
			r := newNode(t, punchConfig(proto, srv), nil)
			a := newNode(t, punchConfig(proto, srv), nil)
			b := newNode(t, punchConfig(proto, srv), nil)
			connect(t, a, r)
			connect(t, b, r)
			r.waitConnected(b.ID(), 1) // R must know B to pass A's request on
			contactB := waitReflected(t, b)
			waitReflected(t, a)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Connect(ctx, contactB); err != nil {
				t.Fatalf("punching: %v", err)
			}
			a.waitConnected(b.ID(), 1)
			b.waitConnected(a.ID(), 1)
			// STUN on loopback sees no NAT: a TCP punch between hosts without NAT is
			// the firewall punch (hop-limited SYN first); QUIC is a QUIC punch.
			want := map[string]string{"tcp": "firewall-punch", "quic": "quic-punch"}[proto]
			if ka, kb := kindOf(t, a, b.ID()), kindOf(t, b, a.ID()); ka != want || kb != want {
				t.Fatalf("connection kinds A=%q B=%q, want %q", ka, kb, want)
			}
			a.waitConns(b.ID(), 1)
			b.waitConns(a.ID(), 1)
			st := a.LadderStats()
			if st[proto+"-punch"].Attempts != 1 || st[want].Successes != 1 {
				t.Fatalf("A's ladder stats %+v, want one %s attempt and one %s success", st, proto+"-punch", want)
			}
			if st := b.LadderStats(); st[proto+"-punch"].Attempts != 1 || st[want].Successes != 1 {
				t.Fatalf("B's ladder stats %+v, want its responder attempt and one %s success", st, want)
			}
			if err := a.Send(b.ID(), []byte("through the hole")); err != nil {
				t.Fatal(err)
			}
			b.waitUntil(5*time.Second, "the message", func() bool { return b.received[a.ID()] == 1 })
		})
	}
}

// Both ends punch toward each other at once: one connection, one PeerConnected each.
func TestPunchFromBothSides(t *testing.T) {
	checkLeaks(t)
	srv := stuntest.New(t, stuntest.Config{})
	r := newNode(t, punchConfig("tcp", srv), nil)
	a := newNode(t, punchConfig("tcp", srv), nil)
	b := newNode(t, punchConfig("tcp", srv), nil)
	connect(t, a, r)
	connect(t, b, r)
	r.waitConnected(a.ID(), 1)
	r.waitConnected(b.ID(), 1)
	ca, cb := waitReflected(t, a), waitReflected(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- a.Connect(ctx, cb) }()
	go func() { errs <- b.Connect(ctx, ca) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("punching from both sides: %v", err)
		}
	}
	a.waitConns(b.ID(), 1)
	b.waitConns(a.ID(), 1)
	if na, nb := a.connectedCount(b.ID()), b.connectedCount(a.ID()); na != 1 || nb != 1 {
		t.Fatalf("PeerConnected A=%d B=%d, want 1 each", na, nb)
	}
}

// With no rendezvous able to help (R is not connected to B), A punches blind toward
// the contact it has; on loopback nothing filters, so that alone connects.
func TestPunchBlind(t *testing.T) {
	checkLeaks(t)
	srv := stuntest.New(t, stuntest.Config{})
	r := newNode(t, punchConfig("tcp", srv), nil)
	a := newNode(t, punchConfig("tcp", srv), nil)
	b := newNode(t, punchConfig("tcp", srv), nil)
	connect(t, a, r)
	contactB := waitReflected(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, contactB); err != nil {
		t.Fatalf("blind punch: %v", err)
	}
	a.waitConnected(b.ID(), 1)
	if k := kindOf(t, a, b.ID()); k != "firewall-punch" { // no NAT on loopback
		t.Fatalf("kind %q, want firewall-punch", k)
	}
	b.waitConnected(a.ID(), 1)
}

// A QUIC punch whose dials fail at once (no socket of the target's family) waits for
// the next round of punch packets instead of spinning: the step ends on its budget
// with one short error.
func TestPunchQUICFailsCalmly(t *testing.T) {
	checkLeaks(t)
	cfg := fastConfig()
	cfg.Protocols = []string{"quic"}
	cfg.StepTimeout = 500 * time.Millisecond
	a := newNode(t, cfg, nil)
	b := newNode(t, fastConfig(), nil)
	target, _ := crust.ParseEndpoint("quic://[::1]:9")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.Connect(ctx, crust.Contact{ID: b.ID(), Reflected: []crust.Endpoint{target}})
	if err == nil {
		t.Fatal("connected to nowhere")
	}
	if len(err.Error()) > 2000 {
		t.Fatalf("a %d-byte error: the dial loop spun", len(err.Error()))
	}
	if st := a.LadderStats()["quic-punch"]; st.Attempts != 1 {
		t.Fatalf("quic-punch stats %+v", st)
	}
}
