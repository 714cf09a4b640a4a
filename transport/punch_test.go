package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Preamble roles on the wire.
const (
	roleDialer   = 1
	roleAcceptor = 2
)

// preamble is the punch preamble, byte for byte as the protocol defines it.
func preamble(role byte, id identity.NodeID) []byte {
	b := append([]byte("CRUSTPUNCH"), 1, role)
	return append(b, id[:]...)
}

// punchEnd is one node's end of a punched connection, from PunchDial or its listener.
type punchEnd struct {
	conn transport.Conn
	err  error
	via  string // "punch" or "listener"
}

// exchange checks that a message written on from arrives on to.
func exchange(t *testing.T, from, to transport.Conn, payload string) {
	t.Helper()
	done := send(from, []wire.Message{wire.Data(payload)})
	got, err := readMessage(to)
	if d, ok := got.(wire.Data); err != nil || !ok || string(d) != payload {
		t.Fatalf("sent %q, received %v, %v", payload, got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("writing: %v", err)
	}
}

// checkPunchedPair checks the two ends of one connection between a and b.
func checkPunchedPair(t *testing.T, a, b *node, ca, cb transport.Conn) {
	t.Helper()
	if transport.AddrPortOf(ca.LocalAddr()) != transport.AddrPortOf(cb.RemoteAddr()) ||
		transport.AddrPortOf(cb.LocalAddr()) != transport.AddrPortOf(ca.RemoteAddr()) {
		t.Fatalf("the ends are not one connection: %v -> %v and %v -> %v", ca.LocalAddr(), ca.RemoteAddr(), cb.LocalAddr(), cb.RemoteAddr())
	}
	if ca.PeerID() != b.id() || cb.PeerID() != a.id() {
		t.Fatalf("peer IDs %s and %s, want %s and %s", ca.PeerID().Short(), cb.PeerID().Short(), b.id().Short(), a.id().Short())
	}
	if ca.Outbound() == cb.Outbound() {
		t.Fatalf("Outbound() is %v on both ends: want exactly one TLS client", ca.Outbound())
	}
	exchange(t, ca, cb, "from a")
	exchange(t, cb, ca, "from b")
}

// punchBoth runs PunchDial on a and b toward each other's listener at once, with both
// listeners accepting, and returns each node's end of the connection that results and
// how each got it.
func punchBoth(t *testing.T, a, b *node, lnA, lnB transport.Listener) (ends [2]punchEnd) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	nodes := [2]*node{a, b}
	lns := [2]transport.Listener{lnA, lnB}
	results := [2]chan punchEnd{make(chan punchEnd, 8), make(chan punchEnd, 8)}
	var punchCtx [2]context.Context
	var stopPunch [2]context.CancelFunc
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 {
		punchCtx[i], stopPunch[i] = context.WithCancel(ctx)
		defer stopPunch[i]()
		other := 1 - i
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			c, err := nodes[i].tcp.PunchDial(punchCtx[i], lns[other].Endpoint().Addr, nodes[other].id())
			results[i] <- punchEnd{c, err, "punch"}
		}()
		go func() {
			defer wg.Done()
			for {
				in, err := lns[i].Accept()
				if err != nil {
					return
				}
				c, err := in.Handshake(ctx)
				results[i] <- punchEnd{c, err, "listener"}
			}
		}()
	}
	close(start)
	for i := range 2 {
		select {
		case e := <-results[i]:
			if e.err != nil {
				t.Fatalf("node %d via %s: %v", i, e.via, e.err)
			}
			ends[i] = e
			t.Cleanup(func() { e.conn.Close() })
		case <-time.After(guard):
			t.Fatalf("node %d has no connection after %v", i, guard)
		}
	}
	// A PunchDial still running cannot connect while the connection that reached its
	// listener holds the 4-tuple: it ends with ctx.
	stopPunch[0]()
	stopPunch[1]()
	lnA.Close()
	lnB.Close()
	wg.Wait()
	for i := range 2 {
		close(results[i])
		for e := range results[i] {
			if e.conn != nil {
				e.conn.Close()
				t.Errorf("node %d got a second connection via %s", i, e.via)
			} else if e.via == "punch" && !errors.Is(e.err, context.Canceled) {
				t.Errorf("node %d: PunchDial ended with %v, want context.Canceled", i, e.err)
			}
		}
	}
	return ends
}

// TestTCPPunchSimultaneous: two nodes punch toward each other at the same moment.
// Either Linux makes one connection by simultaneous open (both PunchDials return it)
// or one SYN reaches the other's listener first (one end comes from PunchDial, the
// other from the listener); either way each node has one verified end of one
// connection, exactly one end is the TLS client, and data flows.
func TestTCPPunchSimultaneous(t *testing.T) {
	counts := map[string]int{}
	for i := range 50 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkLeaks(t)
			a, b := newNode(t, nil), newNode(t, nil)
			lnA, lnB := a.listen(t, "127.0.0.1:0")[0], b.listen(t, "127.0.0.1:0")[0]
			ends := punchBoth(t, a, b, lnA, lnB)
			ca, cb := ends[0].conn, ends[1].conn
			checkPunchedPair(t, a, b, ca, cb)
			if transport.AddrPortOf(ca.LocalAddr()) != lnA.Endpoint().Addr || transport.AddrPortOf(cb.LocalAddr()) != lnB.Endpoint().Addr {
				t.Fatalf("connection %v <-> %v is not between the listen ports %v and %v", ca.LocalAddr(), cb.LocalAddr(), lnA.Endpoint(), lnB.Endpoint())
			}
			switch how := ends[0].via + "/" + ends[1].via; how {
			case "punch/punch":
				// Simultaneous open: the larger node ID is the TLS client.
				if ca.Outbound() != b.id().Less(a.id()) {
					t.Fatalf("simultaneous open: a is TLS client %v, but a > b is %v", ca.Outbound(), b.id().Less(a.id()))
				}
				counts["simultaneous open"]++
			case "punch/listener", "listener/punch":
				// The dialler is TLS client, the listener TLS server.
				if ca.Outbound() != (ends[0].via == "punch") {
					t.Fatalf("%s: a.Outbound() = %v", how, ca.Outbound())
				}
				counts["one SYN reached a listener"]++
			default:
				t.Fatalf("ends via %s", how)
			}
		})
	}
	t.Logf("outcomes: %v", counts)
}

// TestTCPPunchOneSided: the peer only listens; its listener answers the preamble and
// is TLS server. Plain dials to that listener keep working.
func TestTCPPunchOneSided(t *testing.T) {
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
			lnA, lnB := a.listen(t, family.addr)[0], b.listen(t, family.addr)[0]
			inbound := acceptOne(context.Background(), lnB)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			ca, err := a.tcp.PunchDial(ctx, lnB.Endpoint().Addr, b.id())
			if err != nil {
				t.Fatalf("PunchDial: %v", err)
			}
			t.Cleanup(func() { ca.Close() })
			res := wait(t, inbound)
			if res.err != nil {
				t.Fatalf("the listener's Handshake: %v", res.err)
			}
			cb := res.conn
			if !ca.Outbound() || cb.Outbound() {
				t.Fatalf("Outbound() dialler %v, listener %v; want true, false", ca.Outbound(), cb.Outbound())
			}
			if got := transport.AddrPortOf(cb.RemoteAddr()); got != lnA.Endpoint().Addr {
				t.Fatalf("the listener sees the dialler at %v, want its listen address %v", got, lnA.Endpoint())
			}
			if ca.HandshakeRTT() <= 0 || cb.HandshakeRTT() <= 0 {
				t.Errorf("HandshakeRTT %v / %v", ca.HandshakeRTT(), cb.HandshakeRTT())
			}
			checkPunchedPair(t, a, b, ca, cb)

			// A normal dial to the same listener still works.
			c := newNode(t, nil)
			inbound = acceptOne(context.Background(), lnB)
			out, err := c.dial(t, lnB.Endpoint(), b.id())
			if err != nil {
				t.Fatalf("Dial after a punch: %v", err)
			}
			res = wait(t, inbound)
			if res.err != nil || !out.Outbound() || res.conn.Outbound() {
				t.Fatalf("Dial after a punch: inbound %v, outbound %v/%v", res.err, out.Outbound(), res.conn != nil && res.conn.Outbound())
			}
		})
	}
}

// watchNet reports failed dials from the listen port.
type watchNet struct {
	transport.OSNet
	failed chan error
}

func (n watchNet) DialFrom(ctx context.Context, network, laddr, raddr string) (net.Conn, error) {
	c, err := n.OSNet.DialFrom(ctx, network, laddr, raddr)
	if err != nil {
		select {
		case n.failed <- err:
		default:
		}
	}
	return c, err
}

// freePort returns a loopback TCP port that nothing listens on.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return transport.AddrPortOf(ln.Addr())
}

// TestTCPPunchRetries: PunchDial keeps connecting while the port refuses (the peer's
// side is not open yet) and succeeds once the peer listens there.
func TestTCPPunchRetries(t *testing.T) {
	checkLeaks(t)
	failed := make(chan error, 1)
	a, b := newNode(t, func(c *transport.TCPConfig) { c.Net = watchNet{failed: failed} }), newNode(t, nil)
	a.listen(t, "127.0.0.1:0")
	target := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	dialled := make(chan punchEnd, 1)
	go func() {
		c, err := a.tcp.PunchDial(ctx, target, b.id())
		dialled <- punchEnd{c, err, "punch"}
	}()
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("first attempt failed with %v, want ECONNREFUSED", err)
		}
	case <-time.After(guard):
		t.Fatal("no connect attempt")
	}
	ln := b.listen(t, target.String())[0]
	inbound := acceptOne(ctx, ln)
	var e punchEnd
	select {
	case e = <-dialled:
	case <-time.After(guard):
		t.Fatal("PunchDial did not return")
	}
	if e.err != nil {
		t.Fatalf("PunchDial once the peer listens: %v", e.err)
	}
	t.Cleanup(func() { e.conn.Close() })
	res := wait(t, inbound)
	if res.err != nil {
		t.Fatal(res.err)
	}
	checkPunchedPair(t, a, b, e.conn, res.conn)
}

// TestTCPPunchContextEnds: PunchDial gives up when ctx ends, with ctx's error and the
// last attempt's.
func TestTCPPunchContextEnds(t *testing.T) {
	checkLeaks(t)
	a, b := newNode(t, nil), newNode(t, nil)
	a.listen(t, "127.0.0.1:0")
	target := freePort(t)

	// Long enough for a refused attempt or two even on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	c, err := a.tcp.PunchDial(ctx, target, b.id())
	if c != nil {
		c.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("PunchDial to a closed port until the deadline = %v; want DeadlineExceeded and ECONNREFUSED", err)
	}
	if took := time.Since(start); took > guard/2 {
		t.Fatalf("PunchDial returned %v after its deadline", took)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.tcp.PunchDial(cancelled, target, b.id()); !errors.Is(err, context.Canceled) {
		t.Fatalf("PunchDial with a cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := a.tcp.PunchDial(context.Background(), netip.MustParseAddrPort("[::1]:1"), b.id()); err == nil {
		t.Fatal("PunchDial to IPv6 without an IPv6 listener succeeded")
	}
}

// fakeTLS is what fakePeer does after its reply.
type fakeTLS int

const (
	fakeHangUp    fakeTLS = iota // close the connection
	fakeTLSClient                // run TLS as client
	fakeTLSServer                // run TLS as server
)

// fakePeer plays the other end of a punch by hand at a listener: it checks the
// dialler's preamble, answers with reply, and then runs TLS as ident in the given role
// and sends a Hello, or hangs up. Its first error (nil: it got the dialler's Hello)
// arrives on the channel.
func fakePeer(t *testing.T, ident *identity.Identity, dialler identity.NodeID, reply []byte, then fakeTLS) (netip.AddrPort, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg, err := ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			raw, err := ln.Accept()
			if err != nil {
				return err
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(guard))
			got := make([]byte, len(preamble(roleDialer, dialler)))
			if _, err := io.ReadFull(raw, got); err != nil {
				return err
			}
			if want := preamble(roleDialer, dialler); !bytes.Equal(got, want) {
				return fmt.Errorf("dialler's preamble %q, want %q", got, want)
			}
			if _, err := raw.Write(reply); err != nil {
				return err
			}
			var tc *tls.Conn
			switch then {
			case fakeHangUp:
				return nil
			case fakeTLSClient:
				tc = tls.Client(raw, cfg)
			default:
				tc = tls.Server(raw, cfg)
			}
			if err := tc.Handshake(); err != nil {
				return err
			}
			self := ident.ID()
			w := wire.NewWriter(tc, 4096)
			if err := w.Write(&wire.Hello{Version: wire.Version, NodeID: self[:], ObservedAddr: raw.RemoteAddr().String()}); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			m, err := wire.NewReader(tc, 4096, 64<<10).Read()
			if err != nil {
				return err
			}
			if _, ok := m.(*wire.Hello); !ok {
				return fmt.Errorf("dialler sent %T, want a Hello", m)
			}
			// Hold the connection until the dialler is done with it.
			io.Copy(io.Discard, raw)
			return nil
		}()
	}()
	return transport.AddrPortOf(ln.Addr()), done
}

// TestTCPPunchRoles plays the peer by hand to cover each role PunchDial can end up in:
// the peer's listener answered (we are TLS client), or the peer dialled too and has the
// larger or the smaller node ID. Dialling the wrong node fails with WrongPeerError in
// each role.
func TestTCPPunchRoles(t *testing.T) {
	x, y := newNode(t, nil), newNode(t, nil)
	lo, hi := x, y
	if hi.id().Less(lo.id()) {
		lo, hi = hi, lo
	}
	stranger := newNode(t, nil).id()
	tests := []struct {
		name       string
		self, peer *node
		peerRole   byte
		client     bool // we end up TLS client
	}{
		{"peer accepted", lo, hi, roleAcceptor, true},
		{"both dialled, we are smaller", lo, hi, roleDialer, false},
		{"both dialled, we are larger", hi, lo, roleDialer, true},
	}
	for _, tt := range tests {
		for _, wrong := range []bool{false, true} {
			name := tt.name
			if wrong {
				name += "/wrong peer"
			}
			t.Run(name, func(t *testing.T) {
				checkLeaks(t)
				n := newNode(t, func(c *transport.TCPConfig) { c.Identity = tt.self.ident })
				n.listen(t, "127.0.0.1:0")
				role := fakeTLSServer
				if !tt.client {
					role = fakeTLSClient
				}
				addr, peerDone := fakePeer(t, tt.peer.ident, tt.self.id(), preamble(tt.peerRole, tt.peer.id()), role)
				want := tt.peer.id()
				if wrong {
					want = stranger
				}
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				c, err := n.tcp.PunchDial(ctx, addr, want)
				if c != nil {
					defer c.Close()
				}
				if wrong {
					var wp *identity.WrongPeerError
					if !errors.As(err, &wp) || wp.Want != stranger || wp.Got != tt.peer.id() {
						t.Fatalf("PunchDial to the wrong node = %v; want WrongPeerError{Want: stranger, Got: peer}", err)
					}
					<-peerDone
					return
				}
				if err != nil {
					t.Fatalf("PunchDial: %v", err)
				}
				if c.Outbound() != tt.client || c.PeerID() != tt.peer.id() {
					t.Fatalf("Outbound() = %v, PeerID %s; want %v, %s", c.Outbound(), c.PeerID().Short(), tt.client, tt.peer.id().Short())
				}
				c.Close()
				if err := <-peerDone; err != nil {
					t.Fatalf("peer: %v", err)
				}
			})
		}
	}
}

// TestTCPPunchBadReply: a peer that answers with no usable preamble fails PunchDial
// at once, without retries.
func TestTCPPunchBadReply(t *testing.T) {
	tests := []struct {
		name  string
		reply func(self, peer identity.NodeID) []byte
		want  error
	}{
		{"wrong magic", func(self, peer identity.NodeID) []byte {
			return append([]byte("CRUSTPUNCX\x01\x02"), peer[:]...)
		}, transport.ErrBadPunchPreamble},
		{"other version", func(self, peer identity.NodeID) []byte {
			return append([]byte("CRUSTPUNCH\x02\x02"), peer[:]...)
		}, transport.ErrBadPunchPreamble},
		{"unknown role", func(self, peer identity.NodeID) []byte {
			return append([]byte("CRUSTPUNCH\x01\x07"), peer[:]...)
		}, transport.ErrBadPunchPreamble},
		{"zero node ID", func(self, peer identity.NodeID) []byte {
			return preamble(roleAcceptor, identity.NodeID{})
		}, transport.ErrBadPunchPreamble},
		{"our own node ID", func(self, peer identity.NodeID) []byte {
			return preamble(roleDialer, self)
		}, transport.ErrBadPunchPreamble},
		{"a TLS alert (no punch support)", func(self, peer identity.NodeID) []byte {
			return []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32}
		}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			a, peer := newNode(t, nil), newNode(t, nil)
			a.listen(t, "127.0.0.1:0")
			addr, peerDone := fakePeer(t, peer.ident, a.id(), tt.reply(a.id(), peer.id()), fakeHangUp)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			c, err := a.tcp.PunchDial(ctx, addr, peer.id())
			if c != nil {
				c.Close()
			}
			// The larger node sends its ClientHello right after its preamble: a peer
			// that hangs up unread may reset the connection before its bytes are read.
			reset := tt.want == io.ErrUnexpectedEOF && errors.Is(err, syscall.ECONNRESET)
			if !errors.Is(err, tt.want) && !reset {
				t.Fatalf("PunchDial = %v, want %v", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Fatal("PunchDial retried until its deadline")
			}
			<-peerDone
		})
	}
}

// TestTCPListenerPunchPreamble sends preambles by hand to a listener: a good one is
// answered byte for byte; a bad one, one followed by no TLS, or one that names another
// node than TLS proves, fails the handshake and closes the connection.
func TestTCPListenerPunchPreamble(t *testing.T) {
	rogue := newNode(t, nil)
	stranger := newNode(t, nil).id()
	rogueTLS, err := rogue.ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		send []byte
		tls  bool  // then run TLS as rogue
		want error // nil: any error
	}{
		{"wrong magic", append([]byte("CRUSTPUNCX\x01\x01"), make([]byte, 32)...), false, transport.ErrBadPunchPreamble},
		{"only the magic", []byte("CRUSTPUNCH"), false, io.ErrUnexpectedEOF},
		{"version 2", append([]byte("CRUSTPUNCH\x02\x01"), rogue.id().PublicKey()...), false, transport.ErrBadPunchPreamble},
		{"role acceptor", preamble(roleAcceptor, rogue.id()), false, transport.ErrBadPunchPreamble},
		{"unknown role", append([]byte("CRUSTPUNCH\x01\x09"), rogue.id().PublicKey()...), false, transport.ErrBadPunchPreamble},
		{"zero node ID", preamble(roleDialer, identity.NodeID{}), false, transport.ErrBadPunchPreamble},
		{"truncated", preamble(roleDialer, rogue.id())[:20], false, io.ErrUnexpectedEOF},
		{"too long: garbage after it", append(preamble(roleDialer, rogue.id()), "no TLS here, only more bytes"...), false, nil},
		{"names another node than TLS proves", preamble(roleDialer, stranger), true, &identity.WrongPeerError{}},
		{"neither TLS nor a preamble", []byte("GET / HTTP/1.1\r\n\r\n"), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			a := newNode(t, nil)
			ln := a.listen(t, "127.0.0.1:0")[0]
			results := acceptOne(context.Background(), ln)
			raw, err := net.Dial("tcp4", ln.Endpoint().Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(guard))
			if _, err := raw.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.tls {
				answer := make([]byte, len(preamble(roleAcceptor, a.id())))
				if _, err := io.ReadFull(raw, answer); err != nil {
					t.Fatal(err)
				}
				if want := preamble(roleAcceptor, a.id()); !bytes.Equal(answer, want) {
					t.Fatalf("the listener answered %q, want %q", answer, want)
				}
				tc := tls.Client(raw, rogueTLS)
				tc.Handshake() // the listener refuses the certificate
			} else if err := raw.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			res := wait(t, results)
			if res.err == nil {
				t.Fatalf("the listener accepted %q", tt.send)
			}
			var wp *identity.WrongPeerError
			switch want := tt.want.(type) {
			case nil:
			case *identity.WrongPeerError:
				if !errors.As(res.err, &wp) || wp.Want != stranger || wp.Got != rogue.id() {
					t.Fatalf("Handshake = %v, want WrongPeerError{Want: stranger, Got: rogue}", res.err)
				}
			default:
				if !errors.Is(res.err, want) {
					t.Fatalf("Handshake = %v, want %v", res.err, want)
				}
			}
			// The listener closed the connection: we see its end, not our deadline.
			if _, err := io.Copy(io.Discard, raw); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the listener left the connection open")
			}
		})
	}

	t.Run("answer", func(t *testing.T) {
		checkLeaks(t)
		a := newNode(t, nil)
		ln := a.listen(t, "127.0.0.1:0")[0]
		results := acceptOne(context.Background(), ln)
		raw, err := net.Dial("tcp4", ln.Endpoint().Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(guard))
		if _, err := raw.Write(preamble(roleDialer, rogue.id())); err != nil {
			t.Fatal(err)
		}
		answer := make([]byte, 44)
		if _, err := io.ReadFull(raw, answer); err != nil {
			t.Fatal(err)
		}
		id := a.id()
		want := append([]byte{'C', 'R', 'U', 'S', 'T', 'P', 'U', 'N', 'C', 'H', 1, 2}, id[:]...)
		if !bytes.Equal(answer, want) {
			t.Fatalf("the listener answered %x, want %x", answer, want)
		}
		tc := tls.Client(raw, rogueTLS)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		w := wire.NewWriter(tc, 4096)
		self := rogue.id()
		if err := w.Write(&wire.Hello{Version: wire.Version, NodeID: self[:], ObservedAddr: "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		res := wait(t, results)
		if res.err != nil {
			t.Fatalf("the listener refused a good punched connection: %v", res.err)
		}
		if res.conn.Outbound() || res.conn.PeerID() != rogue.id() {
			t.Fatalf("Outbound() %v, PeerID %s; want false, %s", res.conn.Outbound(), res.conn.PeerID().Short(), rogue.id().Short())
		}
	})
}
