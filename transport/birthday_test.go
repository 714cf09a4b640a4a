package transport_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// recordingNet is the OS network that reports every datagram socket it opens.
type recordingNet struct {
	transport.OSNet
	opened chan netip.AddrPort
}

func (r recordingNet) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	pc, err := r.OSNet.ListenPacket(ctx, network, address)
	if err == nil {
		r.opened <- transport.AddrPortOf(pc.LocalAddr())
	}
	return pc, err
}

// newBirthdayQUIC returns a QUIC transport with no socket of its own, whose birthday
// sockets are reported on the returned channel (as loopback addresses).
func newBirthdayQUIC(t *testing.T, sockets int) (*transport.QUIC, <-chan netip.AddrPort) {
	t.Helper()
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan netip.AddrPort, sockets)
	q, err := transport.NewQUIC(transport.QUICConfig{Common: transport.Common{
		Identity: ident, HandshakeTimeout: 3 * time.Second, Net: recordingNet{opened: opened},
	}})
	if err != nil {
		t.Fatal(err)
	}
	loopback := make(chan netip.AddrPort, sockets)
	go func() {
		for range sockets {
			loopback <- netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), (<-opened).Port())
		}
	}()
	return q, loopback
}

// bindable fails the test unless a UDP socket can bind ap (nothing holds it).
func bindable(t *testing.T, ap netip.AddrPort) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ap.String())
	if err != nil {
		t.Fatalf("%v is still held: %v", ap, err)
	}
	pc.Close()
}

// The birthday punch opens its sockets, and the one that a punch packet from the
// peer's endpoint reaches (not one from anywhere else) dials QUIC; the others close
// at once, the winner with the connection.
func TestBirthdayDial(t *testing.T) {
	checkLeaks(t)
	const sockets = 8
	a := newQUICNode(t)
	b, opened := newBirthdayQUIC(t, sockets)
	accepted := a.acceptOne(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	type result struct {
		c   transport.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := b.BirthdayDial(ctx, a.lns[0].Endpoint().Addr, a.ident.ID(), sockets, 20*time.Millisecond)
		res <- result{c, err}
	}()
	var ports []netip.AddrPort
	for range sockets {
		ports = append(ports, <-opened)
	}
	// A's punch packet from elsewhere reaches socket 2, and another node's punch
	// packet from A's socket reaches socket 3: neither may win.
	stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.WriteTo([]byte(punchPacket(a.ident.ID())), net.UDPAddrFromAddrPort(ports[2])); err != nil {
		t.Fatal(err)
	}
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.q.WriteTo([]byte(punchPacket(other.ID())), ports[3]); err != nil {
		t.Fatal(err)
	}
	// The peer's probe reaches socket 5.
	if err := a.q.Punch(ports[5]); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := transport.AddrPortOf(r.c.LocalAddr()).Port(); got != ports[5].Port() {
		t.Fatalf("dialled from port %d, want %d (the socket the probe reached)", got, ports[5].Port())
	}
	switch in := (<-accepted).(type) {
	case error:
		t.Fatalf("accept: %v", in)
	case transport.Conn:
		defer in.Close()
		exchange(t, r.c, in, "birthday")
		exchange(t, in, r.c, "back")
	}
	for i, p := range ports {
		if i != 5 {
			bindable(t, p)
		}
	}
	r.c.Close()
	b.Close() // waits for the connection's socket to close
	bindable(t, ports[5])
}

// Without a probe from the peer, the birthday punch gives up when ctx ends, says
// why, and leaves no socket open.
func TestBirthdayDialNoProbe(t *testing.T) {
	checkLeaks(t)
	const sockets = 4
	a := newQUICNode(t)
	b, opened := newBirthdayQUIC(t, sockets)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := b.BirthdayDial(ctx, a.lns[0].Endpoint().Addr, a.ident.ID(), sockets, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no probe of the peer reached one") {
		t.Fatalf("err = %v, want no probe", err)
	}
	for range sockets {
		bindable(t, <-opened)
	}
}
