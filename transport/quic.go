package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/crust-p2p/crust/transport/identity"
)

// maxDatagramSize is the largest non-QUIC datagram we read; longer ones are cut.
const maxDatagramSize = 1500

// QUIC application error codes used when closing a connection.
const (
	quicCodeClosed    quic.ApplicationErrorCode = 0
	quicCodeHandshake quic.ApplicationErrorCode = 1
)

// QUICConfig configures a QUIC transport.
type QUICConfig struct {
	Common
	// KeepAlivePeriod is how often QUIC sends keepalive packets, which also keep NAT
	// mappings open. Default: 10 s.
	KeepAlivePeriod time.Duration
	// IdleTimeout closes a QUIC connection that heard nothing for this long.
	// Default: 30 s.
	IdleTimeout time.Duration
	// OnPacket receives every datagram on our sockets that is neither QUIC nor a punch
	// packet (STUN answers, say). It must not keep b. Default: such packets are dropped.
	OnPacket func(b []byte, from net.Addr)
	// OnPunch is told of each punch packet (see QUIC.Punch) that arrives: node id
	// (as it claims) punching toward us, seen at from. Punch packets never reach
	// OnPacket. Default: they are dropped quietly.
	OnPunch func(from netip.AddrPort, id identity.NodeID)
}

// QUIC is the QUIC transport: one UDP socket per listen address, each owned by one
// quic.Transport that serves listening, dialling and non-QUIC packets (punching,
// STUN) alike, so all of them share the socket's port and NAT mapping. A crust
// connection is one bidirectional stream, opened by the dialer, carrying the same
// frames as TCP.
type QUIC struct {
	cfg     QUICConfig
	tls     *tls.Config
	quic    *quic.Config
	sockets []*quicSocket
	wg      sync.WaitGroup
	mu      sync.Mutex // guards closed and own
	closed  bool
	// punch is our punch datagram (see Punch).
	punch []byte
	// own are the transports of connections with a socket of their own (a birthday
	// punch's), closed with their connection or with the QUIC transport.
	own map[*quic.Transport]net.PacketConn
}

var _ Transport = (*QUIC)(nil)

type quicSocket struct {
	pc     net.PacketConn
	tr     *quic.Transport
	ep     Endpoint
	cancel context.CancelFunc
}

// NewQUIC returns a QUIC transport; it opens no socket until Listen.
func NewQUIC(cfg QUICConfig) (*QUIC, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.KeepAlivePeriod <= 0 {
		cfg.KeepAlivePeriod = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	tc, err := cfg.Identity.TLSConfig(cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	q := &QUIC{
		cfg:   cfg,
		tls:   tc,
		punch: punchPacket(cfg.Identity.ID()),
		quic: &quic.Config{
			HandshakeIdleTimeout:  cfg.HandshakeTimeout,
			MaxIdleTimeout:        cfg.IdleTimeout,
			KeepAlivePeriod:       cfg.KeepAlivePeriod,
			MaxIncomingStreams:    1,  // the one crust stream, opened by the dialer
			MaxIncomingUniStreams: -1, // none
		},
	}
	if q.cfg.Endpoints == nil {
		q.cfg.Endpoints = q.Endpoints
	}
	return q, nil
}

// Proto implements Transport.
func (q *QUIC) Proto() string { return "quic" }

// Listen opens one UDP socket per address ("ip:port") and listens for QUIC on it. A port
// of 0 on the first address picks a free port, and later addresses with port 0 try the
// same number. Addresses that fail are returned as *ListenError. Call it once.
func (q *QUIC) Listen(ctx context.Context, addrs []string) ([]Listener, []error) {
	var out []Listener
	errs := bindAll(addrs, "udp", func(network, addr string) (netip.AddrPort, error) {
		pc, err := q.cfg.Net.ListenPacket(ctx, network, addr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		s := &quicSocket{pc: pc, tr: &quic.Transport{Conn: pc}, ep: Endpoint{Proto: "quic", Addr: AddrPortOf(pc.LocalAddr())}}
		ln, err := s.tr.Listen(q.tls, q.quic)
		if err != nil {
			s.tr.Close()
			pc.Close()
			return netip.AddrPort{}, err
		}
		// quic-go drops non-QUIC packets until the first ReadNonQUICPacket call: make
		// it now, with nothing to wait for, rather than when the goroutine gets to it.
		buf := make([]byte, maxDatagramSize)
		primed, cancelPrime := context.WithCancel(context.Background())
		cancelPrime()
		if n, from, err := s.tr.ReadNonQUICPacket(primed, buf); err == nil {
			q.handleNonQUIC(buf[:n], from)
		}
		var readCtx context.Context
		readCtx, s.cancel = context.WithCancel(context.Background())
		q.wg.Add(1)
		go q.readNonQUIC(readCtx, s, buf)
		q.sockets = append(q.sockets, s)
		out = append(out, &quicListener{q: q, s: s, ln: ln})
		return s.ep.Addr, nil
	})
	return out, errs
}

// readNonQUIC drains the socket's non-QUIC packets at once: quic-go queues only 32 of
// them and drops the rest.
func (q *QUIC) readNonQUIC(ctx context.Context, s *quicSocket, buf []byte) {
	defer q.wg.Done()
	for {
		n, from, err := s.tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			return
		}
		q.handleNonQUIC(buf[:n], from)
	}
}

// handleNonQUIC hands a non-QUIC datagram to OnPunch or OnPacket.
func (q *QUIC) handleNonQUIC(b []byte, from net.Addr) {
	if id, ok := parsePunchPacket(b); ok {
		if q.cfg.OnPunch != nil {
			q.cfg.OnPunch(AddrPortOf(from), id)
		}
		return
	}
	if q.cfg.OnPacket != nil {
		q.cfg.OnPacket(b, from)
	}
}

// Endpoints lists where the transport can be reached, as TCP.Endpoints does.
func (q *QUIC) Endpoints() []Endpoint {
	bound := make([]Endpoint, len(q.sockets))
	for i, s := range q.sockets {
		bound[i] = s.ep
	}
	return expandEndpoints(q.cfg.Net, bound, q.cfg.Log)
}

// socketFor picks the socket of the address family of to, so that dials and packets
// leave from our listen port (and its NAT mapping).
func (q *QUIC) socketFor(to netip.Addr) (*quicSocket, error) {
	for _, s := range q.sockets {
		if s.ep.Addr.Addr().Is4() == to.Unmap().Is4() {
			return s, nil
		}
	}
	family := "IPv6"
	if to.Unmap().Is4() {
		family = "IPv4"
	}
	return nil, fmt.Errorf("no %s QUIC socket to send from", family)
}

// WriteTo sends a raw datagram (a punch packet, a STUN request) from the socket of
// the destination's family.
func (q *QUIC) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	s, err := q.socketFor(to.Addr())
	if err != nil {
		return 0, err
	}
	return s.tr.WriteTo(b, net.UDPAddrFromAddrPort(to))
}

// Dial implements Transport.
func (q *QUIC) Dial(ctx context.Context, ep Endpoint, want identity.NodeID) (Conn, error) {
	s, err := q.socketFor(ep.Addr.Addr())
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", ep, err)
	}
	c, _, err := q.dialOn(ctx, s.tr, ep, want)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialOn dials ep from tr's socket and runs the crust handshake, bounded by ctx and
// HandshakeTimeout.
func (q *QUIC) dialOn(ctx context.Context, tr *quic.Transport, ep Endpoint, want identity.NodeID) (*streamConn, *quic.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.HandshakeTimeout)
	defer cancel()
	qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(ep.Addr), expectPeerConfig(q.tls, want), q.quic)
	if err != nil {
		return nil, nil, fmt.Errorf("dialling %s: %w", ep, quicError(err))
	}
	stream, err := qc.OpenStreamSync(ctx)
	if err != nil {
		qc.CloseWithError(quicCodeHandshake, "")
		return nil, nil, fmt.Errorf("opening the stream to %s: %w", ep, err)
	}
	c, err := q.greet(ctx, qc, stream, true)
	if err != nil {
		return nil, nil, fmt.Errorf("handshake with %s at %s: %w", want.Short(), ep, err)
	}
	return c, qc, nil
}

// greet wraps the stream and exchanges Hellos, bounded by ctx and HandshakeTimeout.
// On error the QUIC connection is closed.
func (q *QUIC) greet(ctx context.Context, qc *quic.Conn, stream *quic.Stream, outbound bool) (c *streamConn, err error) {
	defer func() {
		if err != nil {
			qc.CloseWithError(quicCodeHandshake, "handshake failed")
		}
	}()
	deadline := q.cfg.Clock.Now().Add(q.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stream.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { stream.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	peer, err := identity.PeerID(qc.ConnectionState().TLS)
	if err != nil {
		return nil, err
	}
	closeFn := func() error { return qc.CloseWithError(quicCodeClosed, "") }
	c = newStreamConn(stream, closeFn, qc.LocalAddr(), qc.RemoteAddr(), "quic", peer, outbound, q.cfg.MaxFrameSize)
	// After both Goodbyes, each side finishes its stream (FIN) and waits for the
	// peer's FIN: the peer sends it only once it has read our Goodbye, so then the
	// peer has everything and the connection can go. A peer that closes first, or
	// the timeout, ends the wait too.
	c.lingerFn = func(timeout time.Duration) {
		stream.Close()
		stream.SetReadDeadline(time.Now().Add(timeout)) // a socket deadline: real time
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed {
			qc.CloseWithError(quicCodeClosed, "")
			return
		}
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			var buf [64]byte
			for {
				if _, err := stream.Read(buf[:]); err != nil {
					break
				}
			}
			qc.CloseWithError(quicCodeClosed, "")
		}()
	}
	if err := c.exchangeHello(&q.cfg.Common, helloFor(q.cfg.Identity.ID(), q.cfg.Endpoints(), qc.RemoteAddr())); err != nil {
		return nil, err
	}
	if !stop() {
		return nil, fmt.Errorf("handshake cancelled: %w", context.Cause(ctx))
	}
	stream.SetDeadline(time.Time{})
	// QUIC measured the round trip during its handshake, on both sides.
	if rtt := qc.ConnectionStats().SmoothedRTT; rtt > 0 {
		c.rtt = rtt
	}
	return c, nil
}

// Close closes every socket, and with them every QUIC connection of this transport.
func (q *QUIC) Close() error {
	q.mu.Lock()
	q.closed = true
	own := q.own
	q.own = nil
	q.mu.Unlock()
	for tr, pc := range own {
		tr.Close()
		pc.Close()
	}
	for _, s := range q.sockets {
		s.cancel()
		s.tr.Close()
		s.pc.Close()
	}
	q.wg.Wait()
	return nil
}

func quicError(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		return tlsError(err)
	}
	var wp *identity.WrongPeerError
	if errors.As(err, &wp) {
		return wp
	}
	return err
}

// quicListener accepts QUIC connections on one socket.
type quicListener struct {
	q  *QUIC
	s  *quicSocket
	ln *quic.Listener
}

func (l *quicListener) Endpoint() Endpoint { return l.s.ep }
func (l *quicListener) Close() error       { return l.ln.Close() }

// Accept returns the next connection whose QUIC handshake completed.
func (l *quicListener) Accept() (Incoming, error) {
	qc, err := l.ln.Accept(context.Background())
	if err != nil {
		if errors.Is(err, quic.ErrServerClosed) || errors.Is(err, quic.ErrTransportClosed) {
			return nil, fmt.Errorf("%w: %v", net.ErrClosed, err)
		}
		return nil, err
	}
	return &quicIncoming{q: l.q, qc: qc}, nil
}

type quicIncoming struct {
	q  *QUIC
	qc *quic.Conn
}

func (in *quicIncoming) RemoteAddr() net.Addr { return in.qc.RemoteAddr() }
func (in *quicIncoming) Close() error         { return in.qc.CloseWithError(quicCodeHandshake, "refused") }

// Handshake accepts the crust stream and exchanges Hellos; the QUIC (TLS) handshake
// is already done.
func (in *quicIncoming) Handshake(ctx context.Context) (Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, in.q.cfg.HandshakeTimeout)
	defer cancel()
	stream, err := in.qc.AcceptStream(ctx)
	if err != nil {
		in.qc.CloseWithError(quicCodeHandshake, "no stream")
		return nil, fmt.Errorf("inbound QUIC from %s: accepting the stream: %w", in.qc.RemoteAddr(), err)
	}
	c, err := in.q.greet(ctx, in.qc, stream, false)
	if err != nil {
		return nil, fmt.Errorf("inbound QUIC handshake from %s: %w", in.qc.RemoteAddr(), err)
	}
	return c, nil
}
