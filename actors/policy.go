package actors

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/crust-p2p/crust/transport/identity"
)

// Policy decides which nodes a node deals with: a whitelist (if not empty, only its
// NodeIDs), a blacklist (never these, whatever the whitelist says) and a blacklist of
// IP prefixes (no connection from or to an address in them). The Supervisor asks it
// before it keeps any state for a peer: dials, beacon sightings and accepted
// connections alike; AllowedAddr is for the accept loop and the dials, before any
// handshake. Safe for concurrent use; a change applies to what comes next (closing
// what is already connected is the caller's part).
type Policy struct {
	mu    sync.RWMutex
	white map[identity.NodeID]bool
	black map[identity.NodeID]bool
	// prefixes is the IP prefix blacklist, replaced whole (under mu) on every change
	// and never modified in place, so AllowedAddr reads it without a lock. Nil while
	// empty: then AllowedAddr is one atomic load.
	prefixes atomic.Pointer[[]netip.Prefix]
}

// PolicyLists are a Policy's lists at one moment, each sorted.
type PolicyLists struct {
	// Whitelist, if not empty, is the only NodeIDs allowed.
	Whitelist []identity.NodeID
	// Blacklist are the NodeIDs refused.
	Blacklist []identity.NodeID
	// BlacklistPrefixes are the IP prefixes refused, masked, IPv4 ones in their
	// 4-byte form.
	BlacklistPrefixes []netip.Prefix
}

// NewPolicy returns a Policy with the given lists. Prefixes are stored as
// BlockPrefix stores them; invalid ones (the zero Prefix) are left out.
func NewPolicy(whitelist, blacklist []identity.NodeID, blacklistPrefixes ...netip.Prefix) *Policy {
	p := &Policy{white: make(map[identity.NodeID]bool), black: make(map[identity.NodeID]bool)}
	for _, id := range whitelist {
		p.white[id] = true
	}
	for _, id := range blacklist {
		p.black[id] = true
	}
	var list []netip.Prefix
	for _, pfx := range blacklistPrefixes {
		if pfx, ok := canonicalPrefix(pfx); ok && !slices.Contains(list, pfx) {
			list = append(list, pfx)
		}
	}
	p.setPrefixes(list)
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

// Block adds id to the blacklist; it reports whether id was not there yet.
func (p *Policy) Block(id identity.NodeID) (added bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	added = !p.black[id]
	p.black[id] = true
	return added
}

// Unblock removes id from the blacklist; it reports whether id was there. A node
// that is not whitelisted (while there is a whitelist) stays refused.
func (p *Policy) Unblock(id identity.NodeID) (removed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	removed = p.black[id]
	delete(p.black, id)
	return removed
}

// BlockPrefix adds pfx to the IP prefix blacklist, masked (192.0.2.7/24 is stored as
// 192.0.2.0/24) and with an IPv4-mapped IPv6 prefix as its IPv4 one
// (::ffff:192.0.2.0/120 as 192.0.2.0/24). It reports whether the prefix was not there
// yet; it fails only for an invalid prefix (the zero Prefix).
func (p *Policy) BlockPrefix(pfx netip.Prefix) (added bool, err error) {
	c, ok := canonicalPrefix(pfx)
	if !ok {
		return false, fmt.Errorf("blocking an IP prefix: %q is not a valid prefix; want e.g. 192.0.2.0/24 or 2001:db8::/32", pfx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.prefixList()
	if slices.Contains(old, c) {
		return false, nil
	}
	p.setPrefixes(append(slices.Clone(old), c))
	return true, nil
}

// UnblockPrefix removes pfx (taken as BlockPrefix takes it) from the IP prefix
// blacklist; it reports whether it was there. Only that exact prefix is removed: a
// wider or narrower blacklisted prefix stays.
func (p *Policy) UnblockPrefix(pfx netip.Prefix) (removed bool) {
	c, ok := canonicalPrefix(pfx)
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.prefixList()
	i := slices.Index(old, c)
	if i < 0 {
		return false
	}
	p.setPrefixes(slices.Delete(slices.Clone(old), i, i+1))
	return true
}

// Lists returns the current lists. A nil Policy has none.
func (p *Policy) Lists() PolicyLists {
	if p == nil {
		return PolicyLists{}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := PolicyLists{BlacklistPrefixes: slices.Clone(p.prefixList())}
	for id := range p.white {
		out.Whitelist = append(out.Whitelist, id)
	}
	for id := range p.black {
		out.Blacklist = append(out.Blacklist, id)
	}
	slices.SortFunc(out.Whitelist, identity.NodeID.Compare)
	slices.SortFunc(out.Blacklist, identity.NodeID.Compare)
	return out
}

// prefixList is the current prefix blacklist, not to be modified.
func (p *Policy) prefixList() []netip.Prefix {
	if list := p.prefixes.Load(); list != nil {
		return *list
	}
	return nil
}

// setPrefixes publishes list, sorted, as the prefix blacklist (nil when empty, so
// that AllowedAddr has nothing to scan); p.mu is held, or p is not shared yet.
func (p *Policy) setPrefixes(list []netip.Prefix) {
	if len(list) == 0 {
		p.prefixes.Store(nil)
		return
	}
	slices.SortFunc(list, comparePrefixes)
	p.prefixes.Store(&list)
}

// canonicalPrefix is pfx masked, an IPv4-mapped IPv6 prefix of /96 or longer as its
// IPv4 prefix (AllowedAddr unmaps addresses, so only the IPv4 form can match); false
// for an invalid prefix.
func canonicalPrefix(pfx netip.Prefix) (netip.Prefix, bool) {
	if !pfx.IsValid() {
		return netip.Prefix{}, false
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), true
}

// comparePrefixes orders IPv4 before IPv6, then by address, then shorter first.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
