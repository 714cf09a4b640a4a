package actors

import (
	"maps"
	"sync"
	"sync/atomic"
)

// StepCount counts how often one way of connecting was tried and how often it
// made the connection.
type StepCount struct {
	// Attempts counts the runs of the step (skipped ones not counted); for the punch
	// kinds, the responder's side of a punch too.
	Attempts uint64
	// Successes counts the peers that got connected by a connection of this kind
	// (each new session once, at either end: an inbound connection counts as its
	// kind too, e.g. "tcp-direct", or "tcp-punch" when it arrived during a punch).
	Successes uint64
}

// ladderStats counts attempts per ladder step and successes per connection kind.
type ladderStats struct {
	mu sync.Mutex
	m  map[string]StepCount
}

func (s *ladderStats) attempt(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]StepCount)
	}
	c := s.m[step]
	c.Attempts++
	s.m[step] = c
}

func (s *ladderStats) success(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]StepCount)
	}
	c := s.m[kind]
	c.Successes++
	s.m[kind] = c
}

func (s *ladderStats) snapshot() map[string]StepCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// LadderStats returns, per ladder step (attempts) and per connection kind
// (successes), how connecting went since the node started: "tcp-direct",
// "tcp-upnp", "tcp-punch", "firewall-punch", "quic-direct", "quic-punch".
func (nd *Node) LadderStats() map[string]StepCount { return nd.n.stats.snapshot() }

// Traffic counts messages and their payload bytes (not TLS or framing), each way.
type Traffic struct {
	// BytesIn and BytesOut count message payload bytes received and sent.
	BytesIn, BytesOut uint64
	// MsgsIn and MsgsOut count messages received and sent.
	MsgsIn, MsgsOut uint64
}

// counters are Traffic counted in place by the readers and writers of connections.
type counters struct {
	bytesIn, bytesOut atomic.Uint64
	msgsIn, msgsOut   atomic.Uint64
}

// received counts n messages of size bytes in all; nil-safe.
func (c *counters) received(n, size int) {
	if c != nil {
		c.msgsIn.Add(uint64(n))
		c.bytesIn.Add(uint64(size))
	}
}

// sent counts n messages of size bytes in all; nil-safe.
func (c *counters) sent(n, size int) {
	if c != nil {
		c.msgsOut.Add(uint64(n))
		c.bytesOut.Add(uint64(size))
	}
}

// snapshot reads the counters; each is read on its own, so a snapshot taken while
// traffic flows may count a batch's messages and not yet its bytes.
func (c *counters) snapshot() Traffic {
	return Traffic{BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(), MsgsIn: c.msgsIn.Load(), MsgsOut: c.msgsOut.Load()}
}

// Traffic returns the messages and payload bytes received and sent since the node
// started, over every session, ended ones included: what every peer's PeerInfo
// counted while it was connected, in sum. The counters only grow.
func (nd *Node) Traffic() Traffic { return nd.n.traffic.snapshot() }
