package actors

import (
	"net/netip"
	"sort"
	"sync"
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
}

// Directory is the data plane's view of connected peers: NodeID → send queue and info.
// Peer actors write it; Service.Send and Service.Peers read it without an actor hop.
type Directory struct {
	mu    sync.RWMutex
	peers map[identity.NodeID]*link
}

type link struct {
	queue *sendQueue
	info  PeerInfo
}

// NewDirectory returns an empty Directory.
func NewDirectory() *Directory {
	return &Directory{peers: make(map[identity.NodeID]*link)}
}

func (d *Directory) add(info PeerInfo, q *sendQueue) {
	d.mu.Lock()
	d.peers[info.ID] = &link{queue: q, info: info}
	d.mu.Unlock()
}

func (d *Directory) update(id identity.NodeID, f func(*PeerInfo)) {
	d.mu.Lock()
	if l := d.peers[id]; l != nil {
		f(&l.info)
	}
	d.mu.Unlock()
}

func (d *Directory) remove(id identity.NodeID) {
	d.mu.Lock()
	delete(d.peers, id)
	d.mu.Unlock()
}

func (d *Directory) queue(id identity.NodeID) *sendQueue {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if l := d.peers[id]; l != nil {
		return l.queue
	}
	return nil
}

// Peers returns the connected peers, sorted by NodeID.
func (d *Directory) Peers() []PeerInfo {
	d.mu.RLock()
	out := make([]PeerInfo, 0, len(d.peers))
	for _, l := range d.peers {
		out = append(out, l.info)
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID.Less(out[j].ID) })
	return out
}
