package actors

import (
	"log/slog"
	"maps"
	"sync"
	"time"
)

// Why something from outside was refused or held back: the keys of Node.Refused.
const (
	// RefusedMaxConnections: an inbound connection beyond Config.MaxConnections.
	RefusedMaxConnections = "max-connections"
	// RefusedPendingHandshakes: an inbound connection while MaxPendingHandshakes
	// handshakes were in progress.
	RefusedPendingHandshakes = "pending-handshakes"
	// RefusedSourceRate: an inbound connection from an IP address over its
	// connection attempt rate (Limits.SourceRate and SourceBurst).
	RefusedSourceRate = "source-rate"
	// RefusedSourcePending: an inbound connection from an IP address that already
	// has a quarter of MaxPendingHandshakes in their handshake.
	RefusedSourcePending = "source-pending"
	// RefusedBlacklist: a connection or peer refused by the black or white list.
	RefusedBlacklist = "blacklist"
	// RefusedPeerRate: a peer's reader paused because the peer sent faster than
	// Config.PeerMessageRate or PeerByteRate (counted once per pause).
	RefusedPeerRate = "peer-rate"
	// RefusedRendezvousRate: a rendezvous request (a Relay frame) over Limits.RelayRate.
	RefusedRendezvousRate = "rendezvous-rate"
	// RefusedBeaconRate: a beacon packet over Config.BeaconReplyRate.
	RefusedBeaconRate = "beacon-rate"
)

// refusalLogEvery is how often, at most, one reason is logged: a flood is a line
// every ten seconds with the count since the last, not a line per packet.
const refusalLogEvery = 10 * time.Second

// refusals counts refusals by reason and logs them without flooding the log.
type refusals struct {
	mu      sync.Mutex
	counts  map[string]uint64
	logged  map[string]time.Time // when each reason was last logged
	pending map[string]uint64    // refusals since then, not yet in a log line
}

// refuse counts one refusal for reason and logs it, unless reason was logged less
// than refusalLogEvery ago; the next line then says how many came in between.
func (r *refusals) refuse(log *slog.Logger, now time.Time, reason string, args ...any) {
	r.mu.Lock()
	if r.counts == nil {
		r.counts, r.logged, r.pending = map[string]uint64{}, map[string]time.Time{}, map[string]uint64{}
	}
	r.counts[reason]++
	r.pending[reason]++
	last, seen := r.logged[reason]
	if seen && now.Sub(last) < refusalLogEvery {
		r.mu.Unlock()
		return
	}
	n := r.pending[reason]
	r.pending[reason], r.logged[reason] = 0, now
	r.mu.Unlock()
	log.Warn("refused: "+reason, append(args, "count", n, "total", r.count(reason))...)
}

// count returns how many refusals reason has had.
func (r *refusals) count(reason string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[reason]
}

// Refused returns how many connections, messages or requests the node refused or
// held back since it started, by reason (the Refused* constants).
func (nd *Node) Refused() map[string]uint64 {
	nd.n.refused.mu.Lock()
	defer nd.n.refused.mu.Unlock()
	return maps.Clone(nd.n.refused.counts)
}
