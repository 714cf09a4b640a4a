package stun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	pion "github.com/pion/stun/v3"
)

// Retransmission defaults from RFC 5389 §7.2.1.
const (
	// defaultRTO is the initial retransmission timeout; it doubles after each send.
	defaultRTO = 500 * time.Millisecond
	// defaultMaxTries is Rc, the number of requests sent before giving up.
	defaultMaxTries = 7
	// finalWaitFactor is Rm: after the last request, wait Rm times the initial RTO.
	finalWaitFactor = 16
	// maxPending bounds the Bindings waiting on one socket, and so the memory a
	// runaway caller can pin.
	maxPending = 64
)

// UDP runs Binding requests over a datagram socket owned by the caller, typically
// the QUIC transport's socket so that the mapping found is the one QUIC uses.
//
// The owner reads the socket and passes every datagram it does not recognise to
// [UDP.HandlePacket]; UDP sends through the function given to [NewUDP]. UDP starts
// no goroutines and needs no Close. It is safe for concurrent use.
type UDP struct {
	send     func(b []byte, to netip.AddrPort) error
	rto      time.Duration
	maxTries int

	mu      sync.Mutex
	pending map[[12]byte]*pending // by transaction ID
}

// pending is one Binding waiting for its response.
type pending struct {
	server netip.AddrPort
	sentAt time.Time   // time of the latest send, guarded by UDP.mu
	answer chan answer // capacity 1: the first answer wins, later copies are dropped
}

// answer is what HandlePacket hands to the waiting Binding.
type answer struct {
	result Result
	err    error
}

// Option configures a [UDP].
type Option func(*UDP)

// WithRTO sets the initial retransmission timeout, which doubles after every send.
// The default is 500 ms (RFC 5389 §7.2.1); values ≤ 0 keep it.
func WithRTO(rto time.Duration) Option {
	return func(u *UDP) {
		if rto > 0 {
			u.rto = rto
		}
	}
}

// WithMaxTries sets how many requests a Binding sends before giving up (Rc). The
// default is 7 (RFC 5389 §7.2.1); values ≤ 0 keep it.
func WithMaxTries(n int) Option {
	return func(u *UDP) {
		if n > 0 {
			u.maxTries = n
		}
	}
}

// NewUDP returns a UDP that sends datagrams with send. send must be safe to call
// from several goroutines at once, as net.UDPConn.WriteToUDPAddrPort is.
func NewUDP(send func(b []byte, to netip.AddrPort) error, opts ...Option) *UDP {
	u := &UDP{
		send:     send,
		rto:      defaultRTO,
		maxTries: defaultMaxTries,
		pending:  make(map[[12]byte]*pending),
	}
	for _, o := range opts {
		o(u)
	}
	return u
}

// HandlePacket is fed every datagram the socket's owner does not recognise. It
// returns true if b is a STUN response to one of our pending Bindings (same
// transaction ID, from that Binding's server); the owner then drops it. Anything
// else returns false, and non-STUN datagrams do so after a few byte comparisons.
// A response that is malformed is claimed but ignored: the Binding keeps waiting.
//
// b is not retained after HandlePacket returns.
func (u *UDP) HandlePacket(b []byte, from netip.AddrPort) bool {
	if !looksLikeSTUN(b) {
		return false
	}
	id := [12]byte(b[8:headerSize])
	u.mu.Lock()
	p, ok := u.pending[id]
	var sentAt time.Time
	if ok {
		sentAt = p.sentAt
	}
	u.mu.Unlock()
	if !ok || !sameEndpoint(from, p.server) {
		return false
	}
	received := time.Now()

	r, err := ParseResponse(b, id)
	switch {
	case errors.Is(err, ErrNotResponse):
		// Our own request coming back (a server address that is ourselves), or
		// something else that is not an answer.
		return false
	case errors.Is(err, ErrNotSTUN):
		// Garbage with our transaction ID: drop it and keep waiting for a real answer.
		return true
	}
	r.RTT = received.Sub(sentAt)
	select {
	case p.answer <- answer{result: r, err: err}:
	default: // a retransmission's answer after the first one
	}
	return true
}

// Binding sends a Binding request to server and waits for the matching response:
// the same transaction ID, from the server's address. It retransmits per RFC 5389
// §7.2.1: the initial RTO (500 ms) doubles after each send, up to Rc (7) sends, then
// waits 16 RTO for a last answer, all bounded by ctx.
//
// Errors name the server; they wrap [ErrNoResponse] (and ctx's error if ctx ended
// first), a [*ServerError], [ErrNoAddress], [ErrTooManyPending], or the send error.
func (u *UDP) Binding(ctx context.Context, server netip.AddrPort) (Result, error) {
	if !server.IsValid() || server.Port() == 0 || server.Addr().IsUnspecified() {
		return Result{}, fmt.Errorf("stun %s: not a server address", server)
	}
	if err := context.Cause(ctx); err != nil {
		return Result{}, fmt.Errorf("stun %s: %w", server, err)
	}
	id := pion.NewTransactionID()
	req, err := newRequest(id)
	if err != nil {
		return Result{}, err
	}
	p := &pending{server: server, answer: make(chan answer, 1)}
	u.mu.Lock()
	if len(u.pending) >= maxPending {
		u.mu.Unlock()
		return Result{}, fmt.Errorf("stun %s: %w", server, ErrTooManyPending)
	}
	u.pending[id] = p
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.pending, id)
		u.mu.Unlock()
	}()

	start := time.Now()
	var timer *time.Timer
	rto := u.rto
	for tries := 1; ; tries++ {
		u.mu.Lock()
		p.sentAt = time.Now()
		u.mu.Unlock()
		if err := u.send(req, server); err != nil {
			return Result{}, fmt.Errorf("stun %s: sending Binding request: %w", server, err)
		}
		wait := rto
		if tries == u.maxTries {
			wait = finalWaitFactor * u.rto
		}
		if rto < time.Hour { // doubling forever would overflow with a huge WithMaxTries
			rto *= 2
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}

		select {
		case a := <-p.answer:
			if a.err != nil {
				return Result{}, fmt.Errorf("stun %s: %w", server, a.err)
			}
			a.result.Server = server.String()
			return a.result, nil
		case <-ctx.Done():
			return Result{}, fmt.Errorf("stun %s: %w after %s (%s): %w",
				server, ErrNoResponse, triesString(tries), roundDuration(time.Since(start)), context.Cause(ctx))
		case <-timer.C:
			if tries >= u.maxTries {
				return Result{}, fmt.Errorf("stun %s: %w after %s (%s)",
					server, ErrNoResponse, triesString(tries), roundDuration(time.Since(start)))
			}
		}
	}
}

// triesString says "1 try" or "7 tries".
func triesString(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}

// roundDuration keeps error messages readable: "9.5s", "120ms".
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// ListenUDP binds a UDP socket of its own at laddr ("host:port") for Bindings, for a
// caller that owns no socket to share (a command-line checker, a test): every server
// is asked from that one socket. Close the returned closer to stop it; it waits for
// its reader.
func ListenUDP(laddr string, opts ...Option) (*UDP, netip.AddrPort, func(), error) {
	pc, err := net.ListenPacket("udp", laddr)
	if err != nil {
		return nil, netip.AddrPort{}, nil, fmt.Errorf("binding UDP %s: %w", laddr, err)
	}
	u := NewUDP(func(b []byte, to netip.AddrPort) error {
		_, err := pc.WriteTo(b, net.UDPAddrFromAddrPort(to))
		return err
	}, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxMessageSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if ua, ok := from.(*net.UDPAddr); ok {
				u.HandlePacket(buf[:n], ua.AddrPort())
			}
		}
	}()
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return u, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), func() { pc.Close(); <-done }, nil
}
