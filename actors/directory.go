package actors

import (
	"context"
	"maps"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
)

// PeerInfo describes a connected peer.
type PeerInfo struct {
	// ID is the peer.
	ID identity.NodeID
	// Addr is the peer's address on the live connection.
	Addr netip.AddrPort
	// LocalAddr is our address on the live connection.
	LocalAddr netip.AddrPort
	// Kind is how the live connection was made, e.g. "tcp-direct".
	Kind string
	// RTT is the smoothed round-trip time (handshake, then keepalive).
	RTT time.Duration
	// Since is when the peer became connected.
	Since time.Time
	// Outbound reports whether we dialled the live connection.
	Outbound bool
	// BytesIn and BytesOut count message payload bytes received from and sent to
	// the peer since it connected; MsgsIn and MsgsOut count the messages.
	BytesIn, BytesOut uint64
	// MsgsIn and MsgsOut count messages received and sent since it connected.
	MsgsIn, MsgsOut uint64
}

// Directory is the data plane's view of connected peers: NodeID → send queue and info.
// Peer actors write it; Service.Send and Service.Peers read it without an actor hop.
// The map is copied on write and read through an atomic pointer: peers come and go
// rarely, while Send looks a peer up for every message.
type Directory struct {
	mu      sync.Mutex // serialises writers
	peers   atomic.Pointer[map[identity.NodeID]*link]
	changed chan struct{} // closed and replaced on every change; under mu
}

type link struct {
	queue *sendQueue
	info  PeerInfo
	stats *linkStats // shared by the copies a change makes
}

// linkStats are the parts of a peer's entry that change often, updated in place.
type linkStats struct {
	rtt     atomic.Int64 // smoothed RTT, ns
	traffic *traffic     // the session's counters
}

// traffic counts one session's messages and payload bytes each way, and adds them to
// the node's lifetime totals as it goes (the session's counts are forgotten when it
// ends; the totals are not). The connections of the session add to it: readers as
// they hand a batch on, writers as they write one.
type traffic struct {
	counters
	total *counters // the node's totals (node.traffic)
}

// newTraffic returns a session's counters, which add to total too.
func newTraffic(total *counters) *traffic { return &traffic{total: total} }

// received counts n messages of size bytes in all; nil-safe.
func (t *traffic) received(n, size int) {
	if t != nil {
		t.counters.received(n, size)
		t.total.received(n, size)
	}
}

// sent counts n messages of size bytes in all; nil-safe.
func (t *traffic) sent(n, size int) {
	if t != nil {
		t.counters.sent(n, size)
		t.total.sent(n, size)
	}
}

// NewDirectory returns an empty Directory.
func NewDirectory() *Directory {
	d := &Directory{changed: make(chan struct{})}
	d.peers.Store(&map[identity.NodeID]*link{})
	return d
}

// change replaces the map with a copy that f has edited.
func (d *Directory) change(f func(map[identity.NodeID]*link)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := maps.Clone(*d.peers.Load())
	f(next)
	d.peers.Store(&next)
	close(d.changed)
	d.changed = make(chan struct{})
}

// waitConnected waits until id is connected or ctx ends.
func (d *Directory) waitConnected(ctx context.Context, id identity.NodeID) error {
	for {
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		if d.connected(id) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// add publishes (or replaces) the entry for info.ID and returns it; its stats may be
// updated in place.
func (d *Directory) add(info PeerInfo, q *sendQueue, t *traffic) *link {
	l := &link{queue: q, info: info, stats: &linkStats{traffic: t}}
	l.stats.rtt.Store(int64(info.RTT))
	d.change(func(m map[identity.NodeID]*link) { m[info.ID] = l })
	return l
}

func (d *Directory) remove(id identity.NodeID) {
	d.change(func(m map[identity.NodeID]*link) { delete(m, id) })
}

func (d *Directory) queue(id identity.NodeID) *sendQueue {
	if l := (*d.peers.Load())[id]; l != nil {
		return l.queue
	}
	return nil
}

// Peers returns the connected peers, sorted by NodeID.
func (d *Directory) Peers() []PeerInfo {
	m := *d.peers.Load()
	out := make([]PeerInfo, 0, len(m))
	for _, l := range m {
		info := l.info
		info.RTT = time.Duration(l.stats.rtt.Load())
		if t := l.stats.traffic; t != nil {
			info.BytesIn, info.BytesOut = t.bytesIn.Load(), t.bytesOut.Load()
			info.MsgsIn, info.MsgsOut = t.msgsIn.Load(), t.msgsOut.Load()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.Less(out[j].ID) })
	return out
}

// count returns how many peers are connected.
func (d *Directory) count() int { return len(*d.peers.Load()) }

// connected reports whether id is connected.
func (d *Directory) connected(id identity.NodeID) bool { return (*d.peers.Load())[id] != nil }
