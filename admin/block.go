package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/crust-p2p/crust"
)

// Target is what block and unblock act on: a node (ID) or an IP prefix (Prefix);
// exactly one is set.
type Target struct {
	// ID is the node, or the zero NodeID for a prefix.
	ID crust.NodeID
	// Prefix is the IP prefix, masked, IPv4 in its 4-byte form; the zero Prefix for
	// a node.
	Prefix netip.Prefix
}

// IsPrefix reports whether t is an IP prefix rather than a node.
func (t Target) IsPrefix() bool { return t.Prefix.IsValid() }

// String returns t as ParseTarget reads it: the NodeID, or the prefix
// ("192.0.2.0/24", "192.0.2.7/32").
func (t Target) String() string {
	if t.IsPrefix() {
		return t.Prefix.String()
	}
	return t.ID.String()
}

// ParseTarget reads a NodeID (52 base32 characters) or an IP prefix
// ("192.0.2.0/24", "2001:db8::/32"); a bare address ("192.0.2.7") is the prefix of
// that one address. IPv4-mapped IPv6 addresses and prefixes are taken as IPv4. A
// prefix with address bits set past its length ("192.0.2.7/24") is refused as a likely
// typo; the error offers the two things it could have meant.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, errors.New(`no target: want a NodeID, or an IP prefix or address like "192.0.2.0/24"`)
	}
	if !strings.ContainsAny(s, ".:/") { // a NodeID has none of them
		id, err := crust.ParseNodeID(s)
		if err != nil {
			return Target{}, fmt.Errorf(`%q is neither a NodeID (52 base32 characters, as "peers" lists them: %v) nor an IP prefix or address like "192.0.2.0/24"`, s, err)
		}
		return Target{ID: id}, nil
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Target{}, fmt.Errorf(`%q is not an IP address; want a NodeID, an address ("192.0.2.7") or a prefix ("192.0.2.0/24", "2001:db8::/32")`, s)
		}
		if a.Zone() != "" {
			return Target{}, fmt.Errorf("%q: an address to block has no zone (%%%s)", s, a.Zone())
		}
		a = a.Unmap()
		return Target{Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Target{}, fmt.Errorf(`%q is not an IP prefix; want e.g. "192.0.2.0/24" or "2001:db8::/32"`, s)
	}
	if m := p.Masked(); m != p {
		return Target{}, fmt.Errorf("%q has address bits set past /%d: did you mean %s (the network) or %s (the one address)?",
			s, p.Bits(), m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return Target{Prefix: p}, nil
}

// BlockStore keeps what the block and unblock requests change, so that it outlives
// the daemon; crust-node's is a file in its data directory. The Server calls it after
// the change is made on the node, one call at a time.
type BlockStore interface {
	// Block records that t was blocked.
	Block(t Target) error
	// Unblock records that t was unblocked. A note, if not empty, is passed to the
	// client: something it should know, such as the config file blocking t again at
	// the next start.
	Unblock(t Target) (note string, err error)
}

// Option configures a Server.
type Option func(*Server)

// WithBlockStore makes the Server record every block and unblock in store. Without
// one, they last as long as the Service.
func WithBlockStore(store BlockStore) Option {
	return func(s *Server) { s.blocks = store }
}

// block answers "block": the target is blocked on the node (a connected peer is
// disconnected), then recorded in the store.
func (s *Server) block(req request) (BlockResult, error) {
	t, err := parseTarget(req)
	if err != nil {
		return BlockResult{}, err
	}
	s.blockMu.Lock()
	defer s.blockMu.Unlock()
	already := s.isBlocked(t)
	if t.IsPrefix() {
		err = s.svc.BlockPrefix(t.Prefix)
	} else {
		err = s.svc.Block(t.ID)
	}
	if err != nil {
		return BlockResult{}, err // it says what was being blocked
	}
	if s.blocks != nil {
		if err := s.blocks.Block(t); err != nil {
			s.log.Error("admin API: saving a block failed", "target", t, "err", err)
			return BlockResult{}, fmt.Errorf("blocked %s, but saving it failed (it holds until the daemon stops): %v", t, err)
		}
	}
	s.log.Info("blocked", "target", t, "already", already)
	return BlockResult{Target: t.String(), Changed: !already}, nil
}

// unblock answers "unblock". A target that is not blocked, as written, is an error
// that lists what is.
func (s *Server) unblock(req request) (BlockResult, error) {
	t, err := parseTarget(req)
	if err != nil {
		return BlockResult{}, err
	}
	s.blockMu.Lock()
	defer s.blockMu.Unlock()
	var removed bool
	if t.IsPrefix() {
		removed = s.svc.UnblockPrefix(t.Prefix)
	} else {
		removed = s.svc.Unblock(t.ID)
	}
	if !removed {
		return BlockResult{}, s.notBlocked(t)
	}
	var note string
	if s.blocks != nil {
		if note, err = s.blocks.Unblock(t); err != nil {
			s.log.Error("admin API: saving an unblock failed", "target", t, "err", err)
			return BlockResult{}, fmt.Errorf("unblocked %s, but saving it failed (it is blocked again at the next start): %v", t, err)
		}
	}
	s.log.Info("unblocked", "target", t)
	return BlockResult{Target: t.String(), Changed: true, Note: note}, nil
}

// notBlocked says that t is not on the node's lists, and what is.
func (s *Server) notBlocked(t Target) error {
	lists := s.svc.Policy()
	if !t.IsPrefix() {
		if len(lists.Whitelist) > 0 && !slices.Contains(lists.Whitelist, t.ID) {
			return fmt.Errorf("%s is not on the blacklist; it is refused for not being on the whitelist, which only the config file sets", t.ID.Short())
		}
		return fmt.Errorf(`%s is not blocked ("blocked" lists what is)`, t.ID.Short())
	}
	var covering []string
	for _, p := range lists.BlacklistPrefixes {
		if p.Overlaps(t.Prefix) {
			covering = append(covering, p.String())
		}
	}
	if len(covering) > 0 {
		return fmt.Errorf("%s is not blocked as such, but overlaps the blocked %s: unblock exactly what is blocked", t, strings.Join(covering, ", "))
	}
	return fmt.Errorf(`%s is not blocked ("blocked" lists what is)`, t)
}

// isBlocked reports whether t is on the blacklists as it is.
func (s *Server) isBlocked(t Target) bool {
	lists := s.svc.Policy()
	if t.IsPrefix() {
		return slices.Contains(lists.BlacklistPrefixes, t.Prefix)
	}
	return slices.Contains(lists.Blacklist, t.ID)
}

// blocked answers "blocked".
func (s *Server) blocked() Blocked {
	lists := s.svc.Policy()
	out := Blocked{IDs: []string{}, Prefixes: []string{}, Whitelist: []string{}}
	for _, id := range lists.Blacklist {
		out.IDs = append(out.IDs, id.String())
	}
	for _, p := range lists.BlacklistPrefixes {
		out.Prefixes = append(out.Prefixes, p.String())
	}
	for _, id := range lists.Whitelist {
		out.Whitelist = append(out.Whitelist, id.String())
	}
	return out
}

func parseTarget(req request) (Target, error) {
	if req.Target == "" {
		return Target{}, fmt.Errorf(`%s needs "target": a NodeID, or an IP prefix or address like "192.0.2.0/24"`, req.Op)
	}
	return ParseTarget(req.Target)
}
