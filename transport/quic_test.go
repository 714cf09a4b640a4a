package transport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

type quicNode struct {
	ident *identity.Identity
	q     *transport.QUIC
	lns   []transport.Listener
}

func newQUICNode(t *testing.T, addrs ...string) *quicNode {
	t.Helper()
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	q, err := transport.NewQUIC(transport.QUICConfig{Common: transport.Common{Identity: ident, HandshakeTimeout: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:0"}
	}
	lns, errs := q.Listen(context.Background(), addrs)
	if len(errs) > 0 {
		t.Fatalf("listen: %v", errs)
	}
	n := &quicNode{ident: ident, q: q, lns: lns}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
		q.Close()
	})
	return n
}

// acceptOne accepts and handshakes one inbound connection on n's first listener.
func (n *quicNode) acceptOne(t *testing.T) <-chan any {
	res := make(chan any, 1)
	go func() {
		in, err := n.lns[0].Accept()
		if err != nil {
			res <- err
			return
		}
		c, err := in.Handshake(context.Background())
		if err != nil {
			res <- err
			return
		}
		res <- c
	}()
	return res
}

func TestQUICDialAcceptExchange(t *testing.T) {
	checkLeaks(t)
	a, b := newQUICNode(t), newQUICNode(t)
	accepted := b.acceptOne(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := a.q.Dial(ctx, b.lns[0].Endpoint(), b.ident.ID())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer out.Close()
	var in transport.Conn
	switch r := (<-accepted).(type) {
	case error:
		t.Fatalf("accept: %v", r)
	case transport.Conn:
		in = r
	}
	defer in.Close()
	if out.PeerID() != b.ident.ID() || in.PeerID() != a.ident.ID() {
		t.Fatal("peer IDs wrong")
	}
	if !out.Outbound() || in.Outbound() || out.Proto() != "quic" {
		t.Fatalf("outbound %v/%v proto %q", out.Outbound(), in.Outbound(), out.Proto())
	}
	// Address reflection: each side tells the other how it looks from there.
	if got, want := in.PeerHello().ObservedAddr, b.lns[0].Endpoint().Addr.String(); got != want {
		t.Errorf("dialer saw the acceptor at %s, want %s", got, want)
	}
	if got, want := out.PeerHello().ObservedAddr, transport.AddrPortOf(out.LocalAddr()).String(); got != want {
		t.Errorf("acceptor saw the dialer at %s, want %s", got, want)
	}
	// The dialer leaves from its listen port: the same socket serves both.
	if got, want := transport.AddrPortOf(out.LocalAddr()), a.lns[0].Endpoint().Addr; got != want {
		t.Errorf("dialled from %v, want the listen socket %v", got, want)
	}
	if out.HandshakeRTT() <= 0 || in.HandshakeRTT() <= 0 {
		t.Errorf("RTT %v / %v", out.HandshakeRTT(), in.HandshakeRTT())
	}
	for i := range 1000 {
		if err := out.WriteData([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		f, err := in.ReadFrame()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if f.Msg != nil || len(f.Data) != 1 || f.Data[0] != byte(i) {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
	if err := in.Write(wire.Ping{Seq: 9}); err != nil {
		t.Fatal(err)
	}
	in.Flush()
	if f, err := out.ReadFrame(); err != nil || f.Msg != (wire.Ping{Seq: 9}) {
		t.Fatalf("ping back: %v %v", f, err)
	}
}

func TestQUICWrongPeer(t *testing.T) {
	checkLeaks(t)
	a, b := newQUICNode(t), newQUICNode(t)
	other, _ := identity.Generate()
	b.acceptOne(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.q.Dial(ctx, b.lns[0].Endpoint(), other.ID())
	var wp *identity.WrongPeerError
	if !errors.As(err, &wp) {
		t.Fatalf("dial under a wrong ID: %v, want WrongPeerError", err)
	}
	if wp.Got != b.ident.ID() {
		t.Errorf("got %s", wp.Got.Short())
	}
}
