package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// DefaultHandshakeTimeout bounds TCP connect, TLS handshake and Hello exchange.
const DefaultHandshakeTimeout = 10 * time.Second

// Limits on the Hello: its frame (the normal frame limit applies only after it) and
// how many endpoints it may list.
const (
	maxHelloSize      = 64 << 10
	maxHelloEndpoints = 256
)

// TCPConfig configures a TCP transport.
type TCPConfig struct {
	Common
}

// TCP is the TLS-over-TCP transport.
type TCP struct {
	cfg       TCPConfig
	tls       *tls.Config
	listeners []*tcpListener
	closing   sync.WaitGroup // connections ending in closeAfterPeerTCP
}

// maxTCPLinger bounds how long an ending connection waits for the peer's FIN.
const maxTCPLinger = 2 * time.Second

// Wait waits for the connections still ending after CloseAfterPeer (each at most a
// couple of seconds): after it, the transport has no goroutine left.
func (t *TCP) Wait() { t.closing.Wait() }

var _ Transport = (*TCP)(nil)

// NewTCP returns a TCP transport; it opens no socket until Listen or Dial.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	tc, err := cfg.Identity.TLSConfig(cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	t := &TCP{cfg: cfg, tls: tc}
	if t.cfg.Endpoints == nil {
		t.cfg.Endpoints = t.Endpoints
	}
	return t, nil
}

// Proto implements Transport.
func (t *TCP) Proto() string { return "tcp" }

// Listen binds one listener per address ("ip:port"). A port of 0 on the first address
// picks a free port, and later addresses with port 0 try the same number, so the node
// listens on one port number on IPv4 and IPv6. Addresses that fail are returned as
// *ListenError beside the listeners that worked. Listen must be called once, before Dial.
func (t *TCP) Listen(ctx context.Context, addrs []string) ([]Listener, []error) {
	var out []Listener
	errs := bindAll(addrs, "tcp", func(network, addr string) (netip.AddrPort, error) {
		ln, err := t.cfg.Net.Listen(ctx, network, addr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		l := &tcpListener{t: t, ln: ln, ep: Endpoint{Proto: "tcp", Addr: AddrPortOf(ln.Addr())}}
		t.listeners = append(t.listeners, l)
		out = append(out, l)
		return l.ep.Addr, nil
	})
	return out, errs
}

// Endpoints lists where the transport can be reached: each listener's address, or for
// a listener on an unspecified address, every global or private unicast address of
// that family on the host.
func (t *TCP) Endpoints() []Endpoint {
	bound := make([]Endpoint, len(t.listeners))
	for i, l := range t.listeners {
		bound[i] = l.ep
	}
	return expandEndpoints(t.cfg.Net, bound, t.cfg.Log)
}

// DialRaw opens a plain TCP connection (no TLS, no Hello) to raddr from the port of
// our listener of raddr's family, so it leaves from the address and port peers know us
// by: STUN over TCP uses it to learn that mapping. It fails if no listener of that
// family exists.
func (t *TCP) DialRaw(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
	network, local, err := t.listenAddrFor(raddr)
	if err != nil {
		return nil, fmt.Errorf("dialling %s from our listen port: %w", raddr, err)
	}
	return t.cfg.Net.DialFrom(ctx, network, local, raddr.String())
}

// listenAddrFor returns the network ("tcp4" or "tcp6") and address of our listener of
// raddr's address family: the one dials from our listen port leave from.
func (t *TCP) listenAddrFor(raddr netip.AddrPort) (network, local string, err error) {
	for _, l := range t.listeners {
		if l.ep.Addr.Addr().Is4() != raddr.Addr().Unmap().Is4() {
			continue
		}
		if l.ep.Addr.Addr().Is4() {
			return "tcp4", l.ep.Addr.String(), nil
		}
		return "tcp6", l.ep.Addr.String(), nil
	}
	return "", "", errors.New("no TCP listener of that address family")
}

// Dial implements Transport.
func (t *TCP) Dial(ctx context.Context, ep Endpoint, want identity.NodeID) (Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	start := t.cfg.Clock.Now()
	raw, err := t.cfg.Net.Dial(ctx, "tcp", ep.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", ep, err)
	}
	connectRTT := t.cfg.Clock.Now().Sub(start)
	c, err := t.handshake(ctx, raw, &want, false)
	if err != nil {
		return nil, fmt.Errorf("handshake with %s at %s: %w", want.Short(), ep, err)
	}
	c.rtt = min(c.rtt, connectRTT)
	return c, nil
}

// handshake runs TLS and the Hello exchange on raw. want is the node we dialled, nil
// on an accepted connection. A dialled connection is normally the TLS client; a
// hole-punched one (punched) first settles the TLS roles with the punch preamble, and
// an accepted one may start with that preamble instead of a TLS ClientHello. Either
// way TLS must prove the node we dialled, or the one a preamble named. On error raw
// is closed.
func (t *TCP) handshake(ctx context.Context, raw net.Conn, want *identity.NodeID, punched bool) (c *streamConn, err error) {
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	deadline := t.cfg.Clock.Now().Add(t.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled ctx must also stop the preamble and the Hello exchange, not only the
	// TLS handshake.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	client, expect, stream := want != nil, want, raw
	switch {
	case punched:
		client, stream, err = t.settlePunchRoles(raw, *want)
	case want == nil:
		stream, expect, err = t.answerPunchPreamble(raw)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return nil, err
	}

	start := t.cfg.Clock.Now()
	cfg := t.tls
	if expect != nil {
		cfg = expectPeerConfig(t.tls, *expect)
	}
	var tc *tls.Conn
	if client {
		tc = tls.Client(stream, cfg)
	} else {
		tc = tls.Server(stream, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, tlsError(err)
	}
	tlsRTT := t.cfg.Clock.Now().Sub(start)
	peer, err := identity.PeerID(tc.ConnectionState())
	if err != nil {
		return nil, err
	}
	c = newStreamConn(tc, func() error { return abortTCP(raw) }, raw.LocalAddr(), raw.RemoteAddr(), "tcp", peer, client, t.cfg.MaxFrameSize)
	c.lingerFn = func(timeout time.Duration) {
		t.closing.Go(func() { closeAfterPeerTCP(tc, raw, min(timeout, maxTCPLinger)) })
	}
	if err := c.exchangeHello(&t.cfg.Common, helloFor(t.cfg.Identity.ID(), t.cfg.Endpoints(), raw.RemoteAddr())); err != nil {
		return nil, err
	}
	if !client {
		c.rtt = tlsRTT
	}
	// Unhook the cancellation first: once it has fired it may still be about to set
	// the past deadline, which would undo the reset below and hand out a dead conn.
	if !stop() {
		return nil, fmt.Errorf("handshake cancelled: %w", context.Cause(ctx))
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

// exchangeHello sends ours and reads theirs; the dialer's time from sending to
// receiving is one round trip, since the acceptor sends its Hello as soon as its TLS
// handshake completes. An acceptor whose cfg.Allow refuses the peer sends Goodbye
// instead and fails with ErrBlocked.
func (c *streamConn) exchangeHello(cfg *Common, ours *wire.Hello) error {
	clock := cfg.Clock
	start := clock.Now()
	if !c.outbound && cfg.Allow != nil && !cfg.Allow(c.peer) {
		if c.fw.Write(wire.Goodbye{Reason: wire.ReasonBlocked}) == nil {
			c.fw.Flush()
		}
		return fmt.Errorf("%w: %s", ErrBlocked, c.peer.Short())
	}
	if cfg.HelloExtra != nil {
		cfg.HelloExtra(c.peer, ours)
	}
	c.ours = ours
	if err := c.fw.Write(ours); err != nil {
		return fmt.Errorf("sending Hello: %w", err)
	}
	if err := c.fw.Flush(); err != nil {
		return fmt.Errorf("sending Hello: %w", err)
	}
	// Until the Hello is in, the peer has proven a key but nothing else: a frame of
	// up to the full limit could make a Hello cost many times its size in memory.
	c.fr.SetMaxFrameSize(maxHelloSize)
	m, err := c.fr.Read()
	c.fr.SetMaxFrameSize(c.maxFrame)
	if err != nil {
		return fmt.Errorf("reading Hello: %w", err)
	}
	c.rtt = clock.Now().Sub(start)
	if g, ok := m.(wire.Goodbye); ok {
		return fmt.Errorf("%w: %q", ErrRefused, g.Reason)
	}
	h, ok := m.(*wire.Hello)
	if !ok {
		return fmt.Errorf("%w: first frame is type %d", ErrBadHello, m.Type())
	}
	if h.Version != wire.Version {
		return fmt.Errorf("%w: version %d, we speak %d", ErrVersion, h.Version, wire.Version)
	}
	id, err := identity.NodeIDFromBytes(h.NodeID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadHello, err)
	}
	if id != c.peer {
		return fmt.Errorf("%w: Hello names node %s but the certificate proves %s", ErrBadHello, id.Short(), c.peer.Short())
	}
	if len(h.Endpoints) > maxHelloEndpoints {
		return fmt.Errorf("%w: %d endpoints, at most %d", ErrBadHello, len(h.Endpoints), maxHelloEndpoints)
	}
	c.hello = h
	return nil
}

// tcpListener is a Listener over one TCP socket.
type tcpListener struct {
	t  *TCP
	ln net.Listener
	ep Endpoint
}

func (l *tcpListener) Endpoint() Endpoint { return l.ep }
func (l *tcpListener) Close() error       { return l.ln.Close() }

func (l *tcpListener) Accept() (Incoming, error) {
	raw, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &tcpIncoming{t: l.t, raw: raw}, nil
}

type tcpIncoming struct {
	t   *TCP
	raw net.Conn
}

func (in *tcpIncoming) RemoteAddr() net.Addr { return in.raw.RemoteAddr() }
func (in *tcpIncoming) Close() error         { return in.raw.Close() }

func (in *tcpIncoming) Handshake(ctx context.Context) (Conn, error) {
	c, err := in.t.handshake(ctx, in.raw, nil, false)
	if err != nil {
		return nil, fmt.Errorf("inbound handshake from %s: %w", in.raw.RemoteAddr(), err)
	}
	return c, nil
}

// closeAfterPeerTCP ends a TCP connection whose Goodbyes are through: our FIN after
// everything we wrote, then, once the peer's FIN shows it has read all of it (or
// after timeout), a close with SO_LINGER 0. The reset instead of a graceful close
// keeps the 4-tuple out of TIME_WAIT: a punched connection runs between the two
// listen ports, and a punch to the same peer within a minute needs that tuple again.
// abortTCP closes raw with a reset, not a FIN: Close is for a connection that failed
// or is given up. A FIN the peer cannot receive (a dead NAT mapping) would keep the
// socket in FIN-WAIT-1, holding its address pair for minutes, and a new punch to the
// same peer from the listen port would fail with EADDRNOTAVAIL until it is gone.
func abortTCP(raw net.Conn) error {
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	return raw.Close()
}

func closeAfterPeerTCP(tc *tls.Conn, raw net.Conn, timeout time.Duration) {
	_ = raw.SetDeadline(time.Now().Add(timeout))
	if tc.CloseWrite() == nil {
		// Read to the peer's FIN (its Goodbye came before: anything more is dropped).
		_, _ = io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	_ = abortTCP(raw)
}
