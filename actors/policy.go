package actors

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/crust-p2p/crust/transport/identity"
)

// Policy decides which nodes a node deals with: a whitelist (if not empty, only its
// NodeIDs) and a blacklist (never these, whatever the whitelist says). The Supervisor
// asks it before it keeps any state for a peer: dials, beacon sightings and accepted
// connections alike. Safe for concurrent use; a change applies to what comes next.
type Policy struct {
	mu    sync.RWMutex
	white map[identity.NodeID]bool
	black map[identity.NodeID]bool
	// prefixes is the IP prefix blacklist, replaced whole (under mu) on every change
	// and never modified in place, so AllowedAddr reads it without a lock. Nil while
	// empty: then AllowedAddr is one atomic load.
	prefixes atomic.Pointer[[]netip.Prefix]
}

// NewPolicy returns a Policy with the given lists.
func NewPolicy(whitelist, blacklist []identity.NodeID) *Policy {
	p := &Policy{white: make(map[identity.NodeID]bool), black: make(map[identity.NodeID]bool)}
	for _, id := range whitelist {
		p.white[id] = true
	}
	for _, id := range blacklist {
		p.black[id] = true
	}
	return p
}

// Allowed reports whether the node may be dialled or accepted. A nil Policy allows
// everyone.
func (p *Policy) Allowed(id identity.NodeID) bool {
	if p == nil {
		return true
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.black[id] {
		return false
	}
	return len(p.white) == 0 || p.white[id]
}

// AllowedAddr reports whether a connection from or to a may go ahead: false when a is
// in a blacklisted prefix. IPv4-mapped IPv6 addresses count as the IPv4 address. A nil
// Policy allows every address. It is cheap enough for every accepted connection: no
// lock, no allocation, one prefix check per blacklisted prefix.
func (p *Policy) AllowedAddr(a netip.Addr) bool {
	if p == nil {
		return true
	}
	list := p.prefixes.Load()
	if list == nil {
		return true
	}
	a = a.Unmap()
	for _, pfx := range *list {
		if pfx.Contains(a) {
			return false
		}
	}
	return true
}

// Block adds id to the blacklist.
func (p *Policy) Block(id identity.NodeID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.black[id] = true
}

// Unblock removes id from the blacklist.
func (p *Policy) Unblock(id identity.NodeID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.black, id)
}
