package actors

import (
	"maps"
	"sync"
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
