package transport_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// A punch packet leaves from the QUIC listen socket; a QUIC transport that receives
// one reports it to OnPunch, never to OnPacket, and keeps working.
func TestQUICPunch(t *testing.T) {
	checkLeaks(t)
	a := newQUICNode(t)

	// A plain socket sees the magic from A's listen port.
	plain, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetDeadline(time.Now().Add(guard))
	if err := a.q.Punch(transport.AddrPortOf(plain.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := plain.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != punchPacket(a.ident.ID()) || transport.AddrPortOf(from) != a.lns[0].Endpoint().Addr {
		t.Fatalf("received %q from %v, want %q from %v", buf[:n], from, punchPacket(a.ident.ID()), a.lns[0].Endpoint())
	}

	// A QUIC transport receiving punches.
	type punch struct {
		from netip.AddrPort
		id   identity.NodeID
	}
	punches := make(chan punch, 10)
	packets := make(chan string, 10)
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	q, err := transport.NewQUIC(transport.QUICConfig{
		Common:   transport.Common{Identity: ident, HandshakeTimeout: 3 * time.Second},
		OnPunch:  func(from netip.AddrPort, id identity.NodeID) { punches <- punch{from, id} },
		OnPacket: func(b []byte, _ net.Addr) { packets <- string(b) },
	})
	if err != nil {
		t.Fatal(err)
	}
	lns, errs := q.Listen(context.Background(), []string{"127.0.0.1:0"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	t.Cleanup(func() { lns[0].Close(); q.Close() })
	b := &quicNode{ident: ident, q: q, lns: lns}
	to := b.lns[0].Endpoint().Addr
	for range 3 {
		if err := a.q.Punch(to); err != nil {
			t.Fatal(err)
		}
	}
	// A datagram sent after the punches arrives after them: by the time OnPacket sees
	// it, every punch has been handled.
	if _, err := a.q.WriteTo([]byte("\x00after the punches"), to); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-packets:
		if p != "\x00after the punches" {
			t.Fatalf("OnPacket saw %q", p)
		}
	case <-time.After(guard):
		t.Fatal("OnPacket saw nothing")
	}
	if len(punches) != 3 {
		t.Fatalf("OnPunch saw %d punches, want 3", len(punches))
	}
	if p := <-punches; p.from != a.lns[0].Endpoint().Addr || p.id != a.ident.ID() {
		t.Fatalf("OnPunch saw a punch from %v by %v, want %v by %v", p.from, p.id.Short(), a.lns[0].Endpoint(), a.ident.ID().Short())
	}

	// QUIC still works between them.
	accepted := b.acceptOne(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	out, err := a.q.Dial(ctx, b.lns[0].Endpoint(), b.ident.ID())
	if err != nil {
		t.Fatalf("dial after punches: %v", err)
	}
	defer out.Close()
	switch r := (<-accepted).(type) {
	case error:
		t.Fatalf("accept after punches: %v", r)
	case transport.Conn:
		defer r.Close()
		exchange(t, out, r, "after punching")
	}
}
