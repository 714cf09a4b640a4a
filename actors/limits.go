package actors

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what peers and strangers can make a node do. A zero field takes its
// default; a negative one turns that limit off. Over a limit the node refuses early
// (before a handshake, or by not reading), counts it by reason (Node.Refused) and logs
// at most every ten seconds per reason.
type Limits struct {
	// MaxConnections caps the node's connections, both directions, inbound
	// handshakes in progress included: an inbound connection beyond it is closed
	// before its TLS handshake. Default: 4096.
	MaxConnections int
	// SourceRate is how many inbound connections one IP address may open per second,
	// with bursts of SourceBurst; more are closed before their TLS handshake. One
	// address may also hold at most a quarter of MaxPendingHandshakes in handshake at
	// once; a negative SourceRate lifts that cap too. Default: 16 per second, bursts
	// of 64.
	SourceRate  float64
	SourceBurst int
	// PeerMessageRate and PeerByteRate bound what one peer may send per second, with
	// bursts of one second's worth: beyond, its connection is not read until the
	// bucket refills (TCP then slows the sender), so that one peer's flood cannot
	// starve the others. Default: 1,000,000 messages and 1 GiB per second.
	PeerMessageRate float64
	PeerByteRate    float64
	// RelayRate is how many Relay frames (rendezvous requests and their answers) one
	// peer may have this node forward or take per second, with bursts of twice that.
	// Default: 20.
	RelayRate float64
	// BeaconReplyRate is how many beacon queries the node answers per second.
	// Default: 10.
	BeaconReplyRate float64
}

func (l *Limits) withDefaults() {
	defFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 4096
	}
	if l.SourceBurst == 0 {
		l.SourceBurst = 64
	}
	defFloat(&l.SourceRate, 16)
	defFloat(&l.PeerMessageRate, 1e6)
	defFloat(&l.PeerByteRate, 1<<30)
	defFloat(&l.RelayRate, 20)
	defFloat(&l.BeaconReplyRate, 10)
}

// limiter returns a token bucket of r per second and the given burst, or nil (no
// limit) for a negative r. Buckets take the time from the caller, so that they
// run on the node's clock.
func limiter(r float64, burst int) *rate.Limiter {
	if r < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r), max(burst, 1))
}

// wait returns how long to wait before n more may pass lim at now (0: at once),
// and takes them; a nil lim never waits. n beyond the burst is charged as the burst.
func wait(lim *rate.Limiter, now time.Time, n int) time.Duration {
	if lim == nil || n <= 0 {
		return 0
	}
	r := lim.ReserveN(now, min(n, lim.Burst()))
	if !r.OK() {
		return 0
	}
	return r.DelayFrom(now)
}

// peerLimit is one connection's inbound budget: messages and bytes per second.
type peerLimit struct {
	msgs, bytes *rate.Limiter
}

func newPeerLimit(l Limits) peerLimit {
	return peerLimit{
		msgs:  limiter(l.PeerMessageRate, msgBurst(l.PeerMessageRate)),
		bytes: limiter(l.PeerByteRate, max(msgBurst(l.PeerByteRate), 16<<20)), // a whole frame always fits
	}
}

// maxRun returns how many messages the reader may hand on before it charges them:
// at most n, and within the message bucket's burst (newPeerLimit), so that a charge
// is never cut.
func maxRun(l Limits, n int) int {
	if l.PeerMessageRate < 0 {
		return n
	}
	return min(n, msgBurst(l.PeerMessageRate))
}

// msgBurst is a bucket's burst for r per second: one second's worth.
func msgBurst(r float64) int { return int(min(math.Max(r, 1), math.MaxInt32)) }

// take charges n messages of size bytes in all and returns how long the reader must
// pause before reading on.
func (p peerLimit) take(now time.Time, n, size int) time.Duration {
	return max(wait(p.msgs, now, n), wait(p.bytes, now, size))
}

// maxSources bounds the addresses sourceLimits remembers; past it, it forgets them
// all, which grants each a fresh burst and nothing more.
const maxSources = 4096

// sourceLimits rations inbound connection attempts per IP address, and how many of
// them may be in their handshake at once.
type sourceLimits struct {
	rate    float64
	burst   int
	mu      sync.Mutex
	by      map[netip.Addr]*rate.Limiter
	pending map[netip.Addr]int // handshakes in progress, by address
}

// startHandshake counts a handshake from ip unless ip already has max in progress.
func (s *sourceLimits) startHandshake(ip netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip = ip.Unmap()
	if s.pending[ip] >= max {
		return false
	}
	if s.pending == nil {
		s.pending = make(map[netip.Addr]int)
	}
	s.pending[ip]++
	return true
}

// endHandshake ends one of ip's handshakes.
func (s *sourceLimits) endHandshake(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip = ip.Unmap()
	if s.pending[ip] <= 1 {
		delete(s.pending, ip)
		return
	}
	s.pending[ip]--
}

// allow reports whether a connection from ip may proceed at now, and takes a token.
func (s *sourceLimits) allow(ip netip.Addr, now time.Time) bool {
	if s.rate < 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.by[ip.Unmap()]
	if lim == nil {
		if s.by == nil || len(s.by) >= maxSources {
			s.by = make(map[netip.Addr]*rate.Limiter)
		}
		lim = rate.NewLimiter(rate.Limit(s.rate), max(s.burst, 1))
		s.by[ip.Unmap()] = lim
	}
	return lim.AllowN(now, 1)
}
