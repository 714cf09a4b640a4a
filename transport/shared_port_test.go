package transport_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
)

// DialRaw leaves from the listener's own port while the listener still accepts: what
// STUN over TCP and TCP hole punching rely on.
func TestDialRawFromListenPort(t *testing.T) {
	checkLeaks(t)
	n := newNode(t, nil)
	ln := n.listen(t, "127.0.0.1:0")[0]
	server, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 { // again and again from the same port, to different or the same peer
		conn, err := n.tcp.DialRaw(ctx, netip.MustParseAddrPort(server.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		peer, err := server.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := transport.AddrPortOf(peer.RemoteAddr()), ln.Endpoint().Addr; got != want {
			t.Fatalf("the server sees us at %v, want our listen address %v", got, want)
		}
		peer.Close()
		conn.Close()
	}
	// The listener still takes connections.
	other := newNode(t, nil)
	acc := acceptOne(ctx, ln)
	c, err := other.tcp.Dial(ctx, ln.Endpoint(), n.id())
	if err != nil {
		t.Fatalf("dialling the listener after DialRaw: %v", err)
	}
	c.Close()
	if a := <-acc; a.err != nil {
		t.Fatal(a.err)
	} else {
		a.conn.Close()
	}
	if _, err := n.tcp.DialRaw(ctx, netip.MustParseAddrPort("[::1]:1")); err == nil {
		t.Fatal("DialRaw to IPv6 without an IPv6 listener succeeded")
	}
}

// Sharing the port with our dials must not let a second listener take a fixed port
// that is in use: it fails as a plain bind would.
func TestListenFixedPortInUse(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, nil)
	ln := a.listen(t, "127.0.0.1:0")[0]
	b := newNode(t, nil)
	lns, errs := b.tcp.Listen(context.Background(), []string{ln.Endpoint().Addr.String()})
	for _, l := range lns {
		l.Close()
	}
	if len(lns) != 0 || len(errs) != 1 || !errors.Is(errs[0], syscall.EADDRINUSE) {
		t.Fatalf("second listener on %v: %d listeners, errors %v; want EADDRINUSE", ln.Endpoint(), len(lns), errs)
	}
}
