package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// guard bounds every wait in these tests: reaching it is a failure, never a step.
const guard = 10 * time.Second

// checkLeaks fails the test if a goroutine outlives it. Call it first so that it runs
// after the cleanups that close connections and listeners.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// requireIPv6 skips the test if ::1 cannot be bound.
func requireIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

type node struct {
	ident *identity.Identity
	tcp   *transport.TCP
}

func newNode(t *testing.T, configure func(*transport.TCPConfig)) *node {
	t.Helper()
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := transport.TCPConfig{Common: transport.Common{Identity: ident, Log: slog.New(slog.DiscardHandler)}}
	if configure != nil {
		configure(&cfg)
	}
	tcp, err := transport.NewTCP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &node{ident: ident, tcp: tcp}
}

func (n *node) id() identity.NodeID { return n.ident.ID() }

// listen binds n on addrs; every address must work.
func (n *node) listen(t *testing.T, addrs ...string) []transport.Listener {
	t.Helper()
	lns, errs := n.tcp.Listen(context.Background(), addrs)
	for _, ln := range lns {
		t.Cleanup(func() { ln.Close() })
	}
	if len(errs) > 0 || len(lns) != len(addrs) {
		t.Fatalf("Listen(%q): %d listeners, errors %v", addrs, len(lns), errs)
	}
	return lns
}

type accepted struct {
	conn transport.Conn
	err  error
}

// acceptOne accepts one connection on ln in the background and runs its Handshake
// under ctx. The listener's cleanup ends a pending Accept.
func acceptOne(ctx context.Context, ln transport.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		in, err := ln.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		c, err := in.Handshake(ctx)
		ch <- accepted{conn: c, err: err}
	}()
	return ch
}

// wait returns what acceptOne produced and closes the connection when the test ends.
func wait(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		if a.conn != nil {
			t.Cleanup(func() { a.conn.Close() })
		}
		return a
	case <-time.After(guard):
		t.Fatalf("no inbound handshake result within %v", guard)
		return accepted{}
	}
}

// dial dials ep from n and closes the connection when the test ends.
func (n *node) dial(t *testing.T, ep transport.Endpoint, want identity.NodeID) (transport.Conn, error) {
	t.Helper()
	c, err := n.tcp.Dial(context.Background(), ep, want)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// connect dials a from b over loopback and returns the outbound and inbound ends.
func connect(t *testing.T, a, b *node, addr string) (out, in transport.Conn) {
	t.Helper()
	ln := a.listen(t, addr)[0]
	inbound := acceptOne(context.Background(), ln)
	out, err := b.dial(t, ln.Endpoint(), a.id())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	res := wait(t, inbound)
	if res.err != nil {
		t.Fatalf("inbound Handshake: %v", res.err)
	}
	return out, res.conn
}

func TestNewTCP(t *testing.T) {
	if _, err := transport.NewTCP(transport.TCPConfig{}); err == nil {
		t.Fatalf("NewTCP without an Identity succeeded")
	}
	n := newNode(t, nil)
	if n.tcp.Proto() != "tcp" {
		t.Fatalf("Proto() = %q, want tcp", n.tcp.Proto())
	}
	if eps := n.tcp.Endpoints(); len(eps) != 0 {
		t.Fatalf("Endpoints() before Listen = %v, want none", eps)
	}
}

func TestTCPListenSamePort(t *testing.T) {
	checkLeaks(t)
	requireIPv6(t)
	n := newNode(t, nil)
	lns := n.listen(t, "127.0.0.1:0", "[::1]:0")
	port := lns[0].Endpoint().Addr.Port()
	want := []transport.Endpoint{
		{Proto: "tcp", Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
		{Proto: "tcp", Addr: netip.AddrPortFrom(netip.MustParseAddr("::1"), port)},
	}
	if port == 0 || lns[1].Endpoint() != want[1] || lns[0].Endpoint() != want[0] {
		t.Fatalf("listeners on %v and %v, want one port number on both", lns[0].Endpoint(), lns[1].Endpoint())
	}
	if got := n.tcp.Endpoints(); !slices.Equal(got, want) {
		t.Fatalf("Endpoints() = %v, want %v", got, want)
	}
}

func TestTCPListenPortTaken(t *testing.T) {
	checkLeaks(t)
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()

	n := newNode(t, nil)
	addrs := []string{busyAddr, "not an address", "127.0.0.1:0", "127.0.0.1:0"}
	lns, errs := n.tcp.Listen(context.Background(), addrs)
	for _, ln := range lns {
		t.Cleanup(func() { ln.Close() })
	}
	if len(errs) != 2 {
		t.Fatalf("Listen(%q) errors %v, want 2", addrs, errs)
	}
	for i, err := range errs {
		var le *transport.ListenError
		if !errors.As(err, &le) || le.Addr != addrs[i] || le.Err == nil {
			t.Errorf("error %d = %#v, want a *ListenError for %q", i, err, addrs[i])
		}
	}
	// The second port-0 address tries the first one's port, finds it taken on the same
	// address, and falls back to any port.
	if len(lns) != 2 {
		t.Fatalf("got %d listeners, want 2", len(lns))
	}
	p0, p1 := lns[0].Endpoint().Addr.Port(), lns[1].Endpoint().Addr.Port()
	if p0 == 0 || p1 == 0 || p0 == p1 {
		t.Fatalf("listeners on ports %d and %d, want two distinct real ports", p0, p1)
	}
	if got := n.tcp.Endpoints(); len(got) != 2 {
		t.Fatalf("Endpoints() = %v, want the two listeners", got)
	}
}

// unspecifiedNet binds loopback but reports the unspecified address, so Endpoints can
// be tested without listening on every interface.
type unspecifiedNet struct {
	transport.OSNet
	addrs []net.Addr
	err   error
}

func (n unspecifiedNet) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	loopback := "127.0.0.1"
	if network == "tcp6" {
		loopback = "::1"
	}
	ln, err := n.OSNet.Listen(ctx, network, net.JoinHostPort(loopback, port))
	if err != nil {
		return nil, err
	}
	return reportedListener{ln, netip.MustParseAddr(host)}, nil
}

func (n unspecifiedNet) InterfaceAddrs() ([]net.Addr, error) { return n.addrs, n.err }

type reportedListener struct {
	net.Listener
	ip netip.Addr
}

func (l reportedListener) Addr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.ip, uint16(l.Listener.Addr().(*net.TCPAddr).Port)))
}

func ipNet(cidr string) net.Addr {
	ip, ipn, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	ipn.IP = ip
	return ipn
}

func TestTCPEndpointsUnspecified(t *testing.T) {
	interfaces := []net.Addr{
		ipNet("127.0.0.1/8"),
		ipNet("192.0.2.10/24"),
		ipNet("169.254.7.7/16"),
		ipNet("10.1.2.3/8"),
		ipNet("::1/128"),
		ipNet("2001:db8::5/64"),
		ipNet("fe80::1/64"),
		ipNet("ff02::1/16"),
		namedAddr{"sim", "not a prefix"},
	}
	tests := []struct {
		name  string
		addr  string
		ipv6  bool
		want  []string
		ifErr error
	}{
		{name: "IPv4", addr: "0.0.0.0:0", want: []string{"192.0.2.10", "10.1.2.3"}},
		{name: "IPv6", addr: "[::]:0", ipv6: true, want: []string{"2001:db8::5"}},
		{name: "no interface list", addr: "0.0.0.0:0", ifErr: errors.New("no interfaces here")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			if tt.ipv6 {
				requireIPv6(t)
			}
			n := newNode(t, func(c *transport.TCPConfig) {
				c.Net = unspecifiedNet{addrs: interfaces, err: tt.ifErr}
			})
			ln := n.listen(t, tt.addr)[0]
			if !ln.Endpoint().Addr.Addr().IsUnspecified() {
				t.Fatalf("listener endpoint %v, want the unspecified address", ln.Endpoint())
			}
			var want []transport.Endpoint
			for _, ip := range tt.want {
				want = append(want, transport.Endpoint{Proto: "tcp", Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), ln.Endpoint().Addr.Port())})
			}
			if got := n.tcp.Endpoints(); !slices.Equal(got, want) {
				t.Fatalf("Endpoints() = %v, want %v", got, want)
			}
		})
	}
}

func TestTCPDial(t *testing.T) {
	for _, family := range []struct {
		name, addr string
		ipv6       bool
	}{{"IPv4", "127.0.0.1:0", false}, {"IPv6", "[::1]:0", true}} {
		t.Run(family.name, func(t *testing.T) {
			checkLeaks(t)
			if family.ipv6 {
				requireIPv6(t)
			}
			a, b := newNode(t, nil), newNode(t, nil)
			b.listen(t, family.addr) // so that b's Hello advertises an endpoint
			out, in := connect(t, a, b, family.addr)

			for _, side := range []struct {
				name     string
				conn     transport.Conn
				peer     *node
				outbound bool
			}{{"dialer", out, a, true}, {"acceptor", in, b, false}} {
				c := side.conn
				if c.PeerID() != side.peer.id() {
					t.Errorf("%s: PeerID() = %s, want %s", side.name, c.PeerID(), side.peer.id())
				}
				if c.Outbound() != side.outbound {
					t.Errorf("%s: Outbound() = %v", side.name, c.Outbound())
				}
				if c.Proto() != "tcp" {
					t.Errorf("%s: Proto() = %q", side.name, c.Proto())
				}
				if c.HandshakeRTT() <= 0 || c.HandshakeRTT() > guard {
					t.Errorf("%s: HandshakeRTT() = %v", side.name, c.HandshakeRTT())
				}
				h := c.PeerHello()
				if h == nil {
					t.Fatalf("%s: no PeerHello", side.name)
				}
				if h.Version != wire.Version {
					t.Errorf("%s: peer Hello version %d", side.name, h.Version)
				}
				if id := side.peer.id(); !bytes.Equal(h.NodeID, id[:]) {
					t.Errorf("%s: peer Hello names %x, want %s", side.name, h.NodeID, side.peer.id())
				}
				// The peer reports the address it sees for us: our own socket address.
				if want := transport.AddrPortOf(c.LocalAddr()).String(); h.ObservedAddr != want {
					t.Errorf("%s: peer observed us at %q, our socket is %q", side.name, h.ObservedAddr, want)
				}
				var wantEps []string
				for _, ep := range side.peer.tcp.Endpoints() {
					wantEps = append(wantEps, ep.String())
				}
				if len(wantEps) == 0 || !slices.Equal(h.Endpoints, wantEps) {
					t.Errorf("%s: peer Hello endpoints %q, want %q", side.name, h.Endpoints, wantEps)
				}
			}
			if transport.AddrPortOf(out.LocalAddr()) != transport.AddrPortOf(in.RemoteAddr()) ||
				transport.AddrPortOf(in.LocalAddr()) != transport.AddrPortOf(out.RemoteAddr()) {
				t.Errorf("socket addresses do not match: dialer %v -> %v, acceptor %v <- %v",
					out.LocalAddr(), out.RemoteAddr(), in.LocalAddr(), in.RemoteAddr())
			}
		})
	}
}

func TestTCPHelloEndpoints(t *testing.T) {
	checkLeaks(t)
	advertised := transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("203.0.113.7:4000")}
	tests := []struct {
		name      string
		configure func(*transport.TCPConfig)
		want      []string
	}{
		{"configured", func(c *transport.TCPConfig) {
			c.Endpoints = func() []transport.Endpoint { return []transport.Endpoint{advertised} }
		}, []string{"tcp://203.0.113.7:4000"}},
		{"not listening", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newNode(t, nil), newNode(t, tt.configure)
			_, in := connect(t, a, b, "127.0.0.1:0")
			if got := in.PeerHello().Endpoints; !slices.Equal(got, tt.want) {
				t.Fatalf("peer Hello endpoints %q, want %q", got, tt.want)
			}
		})
	}
}

// send writes msgs on c and flushes, in the background; the result arrives on the
// returned channel.
func send(c transport.Conn, msgs []wire.Message) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := c.Write(m); err != nil {
				done <- err
				return
			}
		}
		done <- c.Flush()
	}()
	return done
}

func TestTCPMessages(t *testing.T) {
	checkLeaks(t)
	a, b := newNode(t, nil), newNode(t, nil)
	out, in := connect(t, a, b, "127.0.0.1:0")
	msgs := []wire.Message{
		wire.Data("one"),
		wire.Ping{Seq: 1},
		wire.Data(bytes.Repeat([]byte("big"), 100_000)), // larger than the write buffer
		wire.Activate{Seq: 2},
		wire.Data{},
		wire.Pong{Seq: 1},
		wire.Data("last"),
		wire.Goodbye{Reason: wire.ReasonShutdown},
	}
	for _, dir := range []struct {
		name     string
		from, to transport.Conn
	}{{"dialer to acceptor", out, in}, {"acceptor to dialer", in, out}} {
		t.Run(dir.name, func(t *testing.T) {
			done := send(dir.from, msgs)
			for i, want := range msgs {
				got, err := readMessage(dir.to)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("message %d is a %T that differs from the %T sent", i, got, want)
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("writing: %v", err)
			}
		})
	}

	// Frames flushed together arrive together: after the first, the second is
	// already buffered.
	second := wire.Ping{Seq: 2}
	env, err := wire.EncodeEnvelope(second)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-send(out, []wire.Message{wire.Data("x"), second}); err != nil {
		t.Fatal(err)
	}
	if _, err := readMessage(in); err != nil {
		t.Fatal(err)
	}
	if got, want := in.Buffered(), wire.HeaderSize+len(env); got != want {
		t.Fatalf("Buffered() = %d after the first of two frames, want %d", got, want)
	}
	if got, err := readMessage(in); err != nil || got != second {
		t.Fatalf("second frame: %v, %v", got, err)
	}
}

func TestTCPDialWrongPeer(t *testing.T) {
	checkLeaks(t)
	a, b, c := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	ln := a.listen(t, "127.0.0.1:0")[0]
	inbound := acceptOne(context.Background(), ln)
	conn, err := b.dial(t, ln.Endpoint(), c.id())
	var wp *identity.WrongPeerError
	if !errors.As(err, &wp) {
		t.Fatalf("Dial expecting another node = %v, %v; want a *identity.WrongPeerError", conn, err)
	}
	if wp.Want != c.id() || wp.Got != a.id() {
		t.Errorf("WrongPeerError{Want: %s, Got: %s}, want {%s, %s}", wp.Want, wp.Got, c.id(), a.id())
	}
	if res := wait(t, inbound); res.err == nil {
		t.Fatalf("the acceptor completed a handshake the dialer refused")
	}
}

func TestTCPDialFails(t *testing.T) {
	checkLeaks(t)
	b := newNode(t, nil)
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := transport.Endpoint{Proto: "tcp", Addr: transport.AddrPortOf(closed.Addr())}
	closed.Close()
	if c, err := b.dial(t, ep, b.id()); err == nil {
		t.Fatalf("Dial to a closed port gave %v", c)
	}

	a := newNode(t, nil)
	ln := a.listen(t, "127.0.0.1:0")[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := b.tcp.Dial(ctx, ln.Endpoint(), a.id()); !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestTCPHandshakeTimeout: a peer that stops talking during the handshake is dropped
// after HandshakeTimeout, on either side.
func TestTCPHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	isTimeout := func(err error) bool {
		return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
	}
	peer := newNode(t, nil)
	peerTLS, err := peer.ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}

	inbound := []struct {
		name  string
		stall func(raw net.Conn) error // what the dialing peer does before going silent
	}{
		{"silent after connect", func(net.Conn) error { return nil }},
		{"silent after TLS", func(raw net.Conn) error { return tls.Client(raw, peerTLS).Handshake() }},
	}
	for _, tt := range inbound {
		t.Run("acceptor/"+tt.name, func(t *testing.T) {
			checkLeaks(t)
			a := newNode(t, func(c *transport.TCPConfig) { c.HandshakeTimeout = timeout })
			ln := a.listen(t, "127.0.0.1:0")[0]
			results := acceptOne(context.Background(), ln)
			raw, err := net.Dial("tcp", ln.Endpoint().Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(guard))
			if err := tt.stall(raw); err != nil {
				t.Fatalf("peer: %v", err)
			}
			res := wait(t, results)
			if !isTimeout(res.err) {
				t.Fatalf("Handshake with a silent peer = %v, %v; want a timeout", res.conn, res.err)
			}
			// The acceptor closed the connection: the peer sees the end, not its own guard.
			if _, err := io.Copy(io.Discard, raw); err != nil && isTimeout(err) {
				t.Fatalf("the acceptor left the connection open: %v", err)
			}
		})
	}

	outbound := []struct {
		name  string
		stall func(raw net.Conn) error // what the accepting peer does before going silent
	}{
		{"silent after accept", func(net.Conn) error { return nil }},
		{"silent after TLS", func(raw net.Conn) error { return tls.Server(raw, peerTLS).Handshake() }},
	}
	for _, tt := range outbound {
		t.Run("dialer/"+tt.name, func(t *testing.T) {
			checkLeaks(t)
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			stalled := make(chan error, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					stalled <- err
					return
				}
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(guard))
				if err := tt.stall(raw); err != nil {
					stalled <- err
					return
				}
				_, err = io.Copy(io.Discard, raw) // until the dialer gives up
				stalled <- err
			}()
			b := newNode(t, func(c *transport.TCPConfig) { c.HandshakeTimeout = timeout })
			c, err := b.dial(t, transport.Endpoint{Proto: "tcp", Addr: transport.AddrPortOf(ln.Addr())}, peer.id())
			if !isTimeout(err) {
				t.Fatalf("Dial to a silent peer = %v, %v; want a timeout", c, err)
			}
			if err := <-stalled; err != nil {
				t.Fatalf("the dialer did not close the connection: %v", err)
			}
		})
	}
}

// TestTCPHandshakeCancelled: cancelling ctx ends a handshake long before the
// handshake timeout.
func TestTCPHandshakeCancelled(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, func(c *transport.TCPConfig) { c.HandshakeTimeout = time.Minute })
	ln := a.listen(t, "127.0.0.1:0")[0]
	for _, early := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		if early {
			cancel()
		}
		results := acceptOne(ctx, ln)
		raw, err := net.Dial("tcp", ln.Endpoint().Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		// Late, the handshake may or may not have started: either way it must end. The
		// error is then context.Canceled or the I/O error the cancellation caused.
		cancel()
		res := wait(t, results)
		raw.Close()
		if res.err == nil || early && !errors.Is(res.err, context.Canceled) {
			t.Fatalf("Handshake with cancelled context (early %v) = %v, %v; want context.Canceled", early, res.conn, res.err)
		}
	}
}

// cancellingClock cancels a context on its n-th reading.
type cancellingClock struct {
	mu     sync.Mutex
	calls  int
	at     int
	cancel context.CancelFunc
}

func (c *cancellingClock) arm(at int, cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.at, c.cancel = 0, at, cancel
}

func (c *cancellingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == c.at && c.cancel != nil {
		c.cancel()
	}
	return time.Now()
}

// TestTCPCancelAtEveryStep cancels the accepting side's context at each point where
// the handshake reads the clock. The handshake must either fail or hand out a working
// connection; a cancellation racing the end of the handshake used to leave a
// connection whose deadline lay in the past.
func TestTCPCancelAtEveryStep(t *testing.T) {
	failed, succeeded := 0, 0
	for at := 1; at <= 10; at++ {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			checkLeaks(t)
			clock := &cancellingClock{}
			a, b := newNode(t, func(c *transport.TCPConfig) { c.Clock = clock }), newNode(t, nil)
			ln := a.listen(t, "127.0.0.1:0")[0]
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock.arm(at, cancel)
			inbound := acceptOne(ctx, ln)
			out, dialErr := b.dial(t, ln.Endpoint(), a.id())
			res := wait(t, inbound)
			if res.err != nil {
				failed++
				return
			}
			succeeded++
			if dialErr != nil {
				t.Fatalf("the acceptor finished its handshake, the dialer failed: %v", dialErr)
			}
			cancel() // too late to matter
			for _, dir := range []struct{ from, to transport.Conn }{{out, res.conn}, {res.conn, out}} {
				done := send(dir.from, []wire.Message{wire.Ping{Seq: uint64(at)}})
				if got, err := readMessage(dir.to); err != nil || got != (wire.Ping{Seq: uint64(at)}) {
					t.Fatalf("connection handed out after cancelling at step %d does not work: %v, %v", at, got, err)
				}
				if err := <-done; err != nil {
					t.Fatalf("writing: %v", err)
				}
			}
		})
	}
	if failed == 0 || succeeded == 0 {
		t.Fatalf("%d handshakes failed and %d succeeded: the steps no longer cover the handshake", failed, succeeded)
	}
}

// misbehaviours are what a hand-built peer sends after a good TLS handshake.
var misbehaviours = []struct {
	name string
	send func(w *wire.Writer, self, other identity.NodeID) error
	want error // nil: any error
}{
	{"Hello names another node", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(&wire.Hello{Version: wire.Version, NodeID: other[:], ObservedAddr: "127.0.0.1:1"})
	}, transport.ErrBadHello},
	{"Hello without node ID", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(&wire.Hello{Version: wire.Version})
	}, transport.ErrBadHello},
	{"Hello with a short node ID", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(&wire.Hello{Version: wire.Version, NodeID: self[:31]})
	}, transport.ErrBadHello},
	{"Hello of another version", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(&wire.Hello{Version: wire.Version + 1, NodeID: self[:]})
	}, transport.ErrVersion},
	{"Data before Hello", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(wire.Data("hi"))
	}, transport.ErrBadHello},
	{"Hello over the Hello size limit", func(w *wire.Writer, self, other identity.NodeID) error {
		// 70 KiB: well under the frame limit, over the 64 KiB a Hello may take.
		return w.Write(&wire.Hello{Version: wire.Version, NodeID: self[:], Endpoints: make([]string, 70<<10)})
	}, wire.ErrFrameTooLarge},
	{"Hello with too many endpoints", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(&wire.Hello{Version: wire.Version, NodeID: self[:], Endpoints: make([]string, 257)})
	}, transport.ErrBadHello},
	{"Unknown before Hello", func(w *wire.Writer, self, other identity.NodeID) error {
		return w.Write(wire.Unknown{Tag: 77})
	}, transport.ErrBadHello},
	{"nothing, then close", func(w *wire.Writer, self, other identity.NodeID) error {
		return nil
	}, nil},
}

// badFrames are raw frames a hand-built peer sends instead of a Hello.
var badFrames = []struct {
	name  string
	frame []byte
	want  error
}{
	{"malformed frame", []byte{0, 0, 0, 2, 0x92, 0xc1}, wire.ErrMalformed},
	{"oversized frame", []byte{0xff, 0xff, 0xff, 0xff}, wire.ErrFrameTooLarge},
	{"truncated frame", []byte{0, 0, 0, 9, 0x92}, io.ErrUnexpectedEOF},
}

// TestTCPMisbehavingPeer runs each misbehaviour against an acceptor and a dialer;
// both must refuse the connection with the right error.
func TestTCPMisbehavingPeer(t *testing.T) {
	type behaviour struct {
		name string
		send func(tc *tls.Conn, self, other identity.NodeID) error
		want error
	}
	var all []behaviour
	for _, m := range misbehaviours {
		all = append(all, behaviour{m.name, func(tc *tls.Conn, self, other identity.NodeID) error {
			w := wire.NewWriter(tc, 4096)
			if err := m.send(w, self, other); err != nil {
				return err
			}
			return w.Flush()
		}, m.want})
	}
	for _, f := range badFrames {
		all = append(all, behaviour{f.name, func(tc *tls.Conn, self, other identity.NodeID) error {
			_, err := tc.Write(f.frame)
			return err
		}, f.want})
	}
	stranger := newNode(t, nil).id()
	check := func(t *testing.T, err error, want error) {
		t.Helper()
		if err == nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("handshake with a misbehaving peer: %v, want %v", err, want)
		}
	}

	for _, bh := range all {
		t.Run("acceptor/"+bh.name, func(t *testing.T) {
			checkLeaks(t)
			a, rogue := newNode(t, nil), newNode(t, nil)
			ln := a.listen(t, "127.0.0.1:0")[0]
			results := acceptOne(context.Background(), ln)
			raw, err := net.Dial("tcp", ln.Endpoint().Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(guard))
			cfg, err := rogue.ident.TLSConfig(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			tc := tls.Client(raw, cfg)
			if err := tc.Handshake(); err != nil {
				t.Fatalf("rogue TLS: %v", err)
			}
			if err := bh.send(tc, rogue.id(), stranger); err != nil && !tolerableReset(bh.want, err) {
				t.Fatalf("rogue send: %v", err)
			}
			// Half-close: a full close with the acceptor's Hello unread would reset the
			// connection and could discard what we sent.
			if err := raw.(*net.TCPConn).CloseWrite(); err != nil && !tolerableReset(bh.want, err) {
				t.Fatal(err)
			}
			res := wait(t, results)
			check(t, res.err, bh.want)
		})
		t.Run("dialer/"+bh.name, func(t *testing.T) {
			checkLeaks(t)
			b, rogue := newNode(t, nil), newNode(t, nil)
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cfg, err := rogue.ident.TLSConfig(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(guard))
				tc := tls.Server(raw, cfg)
				if err := tc.Handshake(); err != nil {
					served <- err
					return
				}
				if err := bh.send(tc, rogue.id(), stranger); err != nil {
					served <- err
					return
				}
				// Half-close and drain until the dialer gives up, so that no reset
				// discards what we sent.
				if err := raw.(*net.TCPConn).CloseWrite(); err != nil {
					served <- err
					return
				}
				_, err = io.Copy(io.Discard, raw)
				served <- err
			}()
			c, err := b.dial(t, transport.Endpoint{Proto: "tcp", Addr: transport.AddrPortOf(ln.Addr())}, rogue.id())
			check(t, err, bh.want)
			if c != nil {
				t.Fatalf("Dial returned a connection with its error")
			}
			if err := <-served; err != nil && !tolerableReset(bh.want, err) {
				t.Fatalf("rogue server: %v", err)
			}
		})
	}
}

func TestTCPConnClose(t *testing.T) {
	checkLeaks(t)
	a, b := newNode(t, nil), newNode(t, nil)
	out, in := connect(t, a, b, "127.0.0.1:0")
	if err := out.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := out.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if m, err := readMessage(out); err == nil {
		t.Fatalf("Read on a closed connection gave %v", m)
	}
	if err := out.Write(wire.Ping{Seq: 1}); err == nil {
		if err := out.Flush(); err == nil {
			t.Fatalf("Write and Flush on a closed connection succeeded")
		}
	}
	// The peer sees the end of the stream.
	if m, err := readMessage(in); err == nil {
		t.Fatalf("Read from a closed peer gave %v", m)
	}
}

// readMessage reads one frame from c as a Message (Data for a Data frame).
func readMessage(c transport.Conn) (wire.Message, error) {
	f, err := c.ReadFrame()
	if err != nil || f.Msg != nil {
		return f.Msg, err
	}
	return wire.Data(f.Data), nil
}

// tolerableReset: a side that refuses a frame by its length closes before reading the
// rest, so a rogue still writing a large one may see a reset.
func tolerableReset(want, err error) bool {
	return errors.Is(want, wire.ErrFrameTooLarge) &&
		(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN))
}
