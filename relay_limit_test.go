package crust_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/nat/stun/stuntest"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// rawPeer is a peer that speaks the wire protocol itself (TLS, Hello, Activate) so
// that a test can send frames a Service never would, and see every Relay frame the
// node sends it.
type rawPeer struct {
	id   crust.NodeID
	done chan struct{} // closed when the reader has ended

	wmu sync.Mutex // the test's writes and the reader's Pongs
	fw  *wire.Writer

	mu        sync.Mutex
	forwarded map[crust.NodeID]int // Relay frames the node passed on to us, by origin
	refusals  map[string]int       // the node's answers to our Relays that it did not forward, by Error
}

// dialRawPeer connects a rawPeer to node over TCP and waits until the node has the
// connection live: Relay frames can then go to and from it.
func dialRawPeer(t *testing.T, node *testNode) *rawPeer {
	t.Helper()
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, ep := range node.Endpoints() {
		if ep.Proto == "tcp" {
			addr = ep.Addr.String()
		}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{
		id: ident.ID(), done: make(chan struct{}), fw: wire.NewWriter(c, 64<<10),
		forwarded: make(map[crust.NodeID]int), refusals: make(map[string]int),
	}
	t.Cleanup(func() {
		c.Close()
		<-p.done
	})
	fr := wire.NewReader(c, 4096, wire.DefaultMaxFrameSize)
	p.write(t, &wire.Hello{Version: wire.Version, NodeID: p.id[:]})
	if m, err := fr.Read(); err != nil {
		t.Fatalf("reading the node's Hello: %v", err)
	} else if _, ok := m.(*wire.Hello); !ok {
		t.Fatalf("the node's first frame is %T, want Hello", m)
	}
	if p.id.Less(node.ID()) { // the smaller NodeID decides which connection is live
		p.write(t, wire.Activate{Seq: 1})
	}
	go p.read(fr)
	node.waitConnected(p.id, 1)
	return p
}

// read answers Pings (the node's keepalive) and counts Relay frames until the
// connection ends.
func (p *rawPeer) read(fr *wire.Reader) {
	defer close(p.done)
	for {
		m, err := fr.Read()
		if err != nil {
			return
		}
		switch m := m.(type) {
		case wire.Ping:
			p.wmu.Lock()
			if p.fw.Write(wire.Pong(m)) == nil {
				p.fw.Flush()
			}
			p.wmu.Unlock()
		case wire.Relay:
			p.mu.Lock()
			if m.Error != "" {
				p.refusals[m.Error]++
			} else if from, err := identity.NodeIDFromBytes(m.From); err == nil {
				p.forwarded[from]++
			}
			p.mu.Unlock()
		}
	}
}

// write sends frames at once.
func (p *rawPeer) write(t *testing.T, ms ...wire.Message) {
	t.Helper()
	if err := p.send(ms...); err != nil {
		t.Fatal(err)
	}
}

// send is write for a goroutine other than the test's.
func (p *rawPeer) send(ms ...wire.Message) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for _, m := range ms {
		if err := p.fw.Write(m); err != nil {
			return err
		}
	}
	return p.fw.Flush()
}

// drained waits until the node has taken in every Relay p sent so far. A Relay to a
// malformed destination is answered at once, after those before it: one reader per
// connection hands them on in order. The answer, a control frame, is dropped when the
// connection's control queue is full, so the probe is repeated until one comes back.
func (p *rawPeer) drained(t *testing.T) {
	t.Helper()
	const why = "malformed destination"
	deadline := time.Now().Add(10 * time.Second)
	for before := p.refused(why); ; {
		if time.Now().After(deadline) {
			t.Fatal("the node did not answer a Relay to nowhere")
		}
		p.write(t, wire.Relay{To: []byte{0}})
		for wait := time.Now().Add(100 * time.Millisecond); time.Now().Before(wait); {
			if p.refused(why) > before {
				return
			}
			time.Sleep(5 * time.Millisecond) // polling for the answer
		}
	}
}

// relays returns n Relay frames for to, as a peer asking to be introduced would send.
func relays(to crust.NodeID, n int) []wire.Message {
	ms := make([]wire.Message, n)
	for i := range ms {
		ms[i] = wire.Relay{To: to[:], Body: fmt.Appendf(nil, "request %d", i)}
	}
	return ms
}

// from returns how many Relays from origin the node forwarded to p.
func (p *rawPeer) from(origin crust.NodeID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwarded[origin]
}

// refused returns how many of p's Relays the node refused with Error why.
func (p *rawPeer) refused(why string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusals[why]
}

// A peer that floods a rendezvous R with Relay frames (requests to be introduced to
// another of R's peers) has at most RelayRate of them forwarded per second, after a
// burst of twice that; R answers the rest "rate limited", counts them under
// "rendezvous-rate" and logs one line for the lot. Meanwhile R serves everyone else:
// another peer's Relays all pass, a hole punch R introduces succeeds, and a message
// to R arrives. Once the flood is over, the flooder is served again.
//
// Without the limit R forwards the whole flood (1,000 Relays, where about 60 may
// pass). What R forwarded is counted at R (the flood less its refusals): Relays are
// control frames, which a connection drops beyond 16 waiting, so the target and the
// flooder see only part of the forwarded Relays and of the refusals.
func TestRelayFlood(t *testing.T) {
	checkLeaks(t)
	const (
		relayRate = 20 // the default
		burst     = 2 * relayRate
		chunks    = 10
		chunk     = 100 // Relays per 100 ms: 1,000 a second, 50 times the rate
		flood     = chunks * chunk
		honest    = 10 // another peer's Relays, within its own burst
	)
	srv := stuntest.New(t, stuntest.Config{})
	cfg := fastConfig()
	cfg.Protocols = []string{"tcp"}
	cfg.Limits.RelayRate = relayRate
	r := newNode(t, cfg, nil)
	a := newNode(t, punchConfig("tcp", srv), nil)
	b := newNode(t, punchConfig("tcp", srv), nil)
	connect(t, a, r)
	connect(t, b, r)
	r.waitConnected(b.ID(), 1) // R must know B to pass A's request on
	contactB := waitReflected(t, b)
	waitReflected(t, a)
	flooder, target := dialRawPeer(t, r), dialRawPeer(t, r)
	other, otherTarget := dialRawPeer(t, r), dialRawPeer(t, r)

	start := time.Now()
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		tick := time.NewTicker(100 * time.Millisecond) // pacing the flood, not waiting for it
		defer tick.Stop()
		for i := range chunks {
			if i > 0 {
				<-tick.C
			}
			if err := flooder.send(relays(target.id, chunk)...); err != nil {
				t.Errorf("flooding: %v", err)
				return
			}
		}
	}()
	// Once R refuses the flooder: another peer's Relays, a punch through R, a message
	// to R.
	pollUntil(t, 5*time.Second, func() bool {
		select {
		case <-flooding: // never refused: the checks below say how many passed
			return true
		default:
			return r.Refused()["rendezvous-rate"] > 0
		}
	}, func() string { return "R neither refused the flooder nor did the flood end" })
	other.write(t, relays(otherTarget.id, honest)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, contactB); err != nil {
		t.Fatalf("punching through R during the flood: %v", err)
	}
	punched := time.Since(start)
	if err := a.Send(r.ID(), []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	<-flooding
	flooder.drained(t)
	took := time.Since(start)

	// R forwarded what it did not refuse. Tokens accrue only while R takes the flood
	// in, which is within took.
	refused := int(r.Refused()["rendezvous-rate"])
	forwarded := flood - refused
	most := burst + int(relayRate*took.Seconds()) + 1
	t.Logf("%d Relays in %v: R forwarded %d (at most %d) and refused %d; the target got %d, the flooder %d refusals (the rest were dropped from full control queues); A punched through R %v into the flood",
		flood, took.Round(time.Millisecond), forwarded, most, refused, target.from(flooder.id), flooder.refused("rate limited"), punched.Round(time.Millisecond))
	if forwarded > most || forwarded < burst {
		t.Errorf("R forwarded %d of %d Relays in %v, want %d to %d (a burst of %d, then %d a second)", forwarded, flood, took, burst, most, burst, relayRate)
	}
	if got := target.from(flooder.id); got > forwarded {
		t.Errorf("the target got %d of the flooder's Relays, R refused all but %d", got, forwarded)
	}
	if got := flooder.refused("rate limited"); got == 0 || got > refused {
		t.Errorf("the flooder was told of %d refusals, R counted %d", got, refused)
	}
	if lines, most := strings.Count(r.logs.String(), "refused: rendezvous-rate"), 1+int(took/(10*time.Second)); lines < 1 || lines > most {
		t.Errorf("R logged the refusals in %d lines, want 1 to %d (one per ten seconds)", lines, most)
	}

	other.drained(t)
	if got, no := otherTarget.from(other.id), other.refused("rate limited"); got != honest || no != 0 {
		t.Errorf("R forwarded %d of the other peer's %d Relays and refused %d", got, honest, no)
	}
	// B answered A's punch: only a rendezvous could have told it to.
	if st := b.LadderStats(); st["tcp-punch"].Attempts != 1 {
		t.Errorf("B's ladder stats %+v: B was not asked to punch through R", st)
	}
	r.waitUntil(5*time.Second, "A's message", func() bool { return r.received[a.ID()] == 1 })
	if err := a.Send(b.ID(), []byte("through the hole")); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(5*time.Second, "A's message", func() bool { return b.received[a.ID()] == 1 })

	// The flooder is held back, not banned: its bucket refills. One Relay at a time,
	// each forwarded or refused before the next.
	deadline := time.Now().Add(5 * time.Second)
	for got := target.from(flooder.id); target.from(flooder.id) == got; {
		if time.Now().After(deadline) {
			t.Fatalf("the flooder's Relays are still refused %v after the flood", time.Since(start)-took)
		}
		before := r.Refused()["rendezvous-rate"]
		flooder.write(t, relays(target.id, 1)...)
		pollUntil(t, 5*time.Second, func() bool { return target.from(flooder.id) > got || r.Refused()["rendezvous-rate"] > before },
			func() string { return "R neither forwarded nor refused the flooder's Relay" })
	}
}
