package transport

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Contact is what a node needs to reach another (Crust's ConnectionInfo): its NodeID
// and its endpoints grouped by kind, each with its protocol. An application gets ours
// from Service.Contact, carries it to the peer by any means (msgpack via MarshalBinary,
// or the text form), and the peer passes it to Connect.
type Contact struct {
	// ID is the node; a connection is refused unless the peer proves this key.
	ID identity.NodeID
	// Endpoints are addresses on the node's own interfaces, dialled directly. LAN
	// (private, loopback, link-local) and public addresses are told apart by the
	// address itself; see LAN and Public.
	Endpoints []Endpoint
	// UPnP are endpoints a UPnP gateway forwards to the node.
	UPnP []Endpoint
	// Reflected are the node's endpoints as seen from outside, by peers (the observed
	// address in their Hello) or STUN servers: the targets of a hole punch.
	Reflected []Endpoint
	// NAT is the node's NAT mapping behaviour as the node knows it: "no-nat",
	// "endpoint-independent", "endpoint-dependent" (symmetric), or "" when unknown.
	// A hole punch toward an endpoint-dependent NAT needs port prediction.
	NAT string
}

// maxNATLen bounds Contact.NAT; it is a word of lower-case letters and dashes.
const maxNATLen = 32

// checkNAT accepts what Contact.NAT may hold: "" or a short word of a-z and "-"
// (values a later version may add included).
func checkNAT(s string) error {
	if len(s) > maxNATLen {
		return fmt.Errorf("NAT behaviour %.40q: longer than %d bytes", s, maxNATLen)
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' {
			return fmt.Errorf("NAT behaviour %q: want lower-case letters and dashes", s)
		}
	}
	return nil
}

// IsLAN reports whether a is a local-network address: loopback, private (RFC 1918,
// RFC 4193), link-local or CGNAT shared space.
func IsLAN(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// LAN returns the Endpoints on local-network addresses.
func (c Contact) LAN() []Endpoint {
	return slices.DeleteFunc(slices.Clone(c.Endpoints), func(e Endpoint) bool { return !IsLAN(e.Addr.Addr()) })
}

// Public returns the Endpoints on public addresses.
func (c Contact) Public() []Endpoint {
	return slices.DeleteFunc(slices.Clone(c.Endpoints), func(e Endpoint) bool { return IsLAN(e.Addr.Addr()) })
}

// Text form prefixes: an endpoint without one is a direct endpoint.
const (
	prefixUPnP      = "upnp:"
	prefixReflected = "reflected:"
	// prefixNAT is not an endpoint: "nat:endpoint-dependent" carries Contact.NAT.
	prefixNAT = "nat:"
)

// String returns the text form, "id@ep,ep,upnp:ep,reflected:ep,nat:behaviour", which
// ParseContact reads; with only direct endpoints it is
// "id@tcp://192.0.2.1:5483,quic://...".
func (c Contact) String() string {
	var parts []string
	for _, group := range []struct {
		prefix string
		eps    []Endpoint
	}{{"", c.Endpoints}, {prefixUPnP, c.UPnP}, {prefixReflected, c.Reflected}} {
		for _, ep := range group.eps {
			parts = append(parts, group.prefix+ep.String())
		}
	}
	if c.NAT != "" {
		parts = append(parts, prefixNAT+c.NAT)
	}
	return c.ID.String() + "@" + strings.Join(parts, ",")
}

// ParseContact parses the text form: "id@ep[,ep...]" where each ep is
// "proto://host:port", optionally prefixed by "upnp:" or "reflected:", and one entry
// may be "nat:behaviour".
func ParseContact(s string) (Contact, error) {
	idText, epsText, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Contact{}, fmt.Errorf("contact %q: want id@proto://host:port[,...]", s)
	}
	id, err := identity.ParseNodeID(idText)
	if err != nil {
		return Contact{}, fmt.Errorf("contact: %w", err)
	}
	c := Contact{ID: id}
	if epsText == "" {
		return c, nil
	}
	parts := strings.Split(epsText, ",")
	if len(parts) > MaxContactEndpoints {
		return Contact{}, fmt.Errorf("contact: %d endpoints, at most %d", len(parts), MaxContactEndpoints)
	}
	for _, e := range parts {
		e = strings.TrimSpace(e)
		if nat, ok := strings.CutPrefix(e, prefixNAT); ok {
			if err := checkNAT(nat); err != nil {
				return Contact{}, fmt.Errorf("contact: %w", err)
			}
			c.NAT = nat
			continue
		}
		group := &c.Endpoints
		switch {
		case strings.HasPrefix(e, prefixUPnP):
			group, e = &c.UPnP, strings.TrimPrefix(e, prefixUPnP)
		case strings.HasPrefix(e, prefixReflected):
			group, e = &c.Reflected, strings.TrimPrefix(e, prefixReflected)
		}
		ep, err := ParseEndpoint(e)
		if err != nil {
			return Contact{}, fmt.Errorf("contact: %w", err)
		}
		*group = append(*group, ep)
	}
	return c, nil
}

// MaxContactEndpoints bounds the endpoints of a decoded Contact, all kinds together.
const MaxContactEndpoints = 64

// contactWire is the msgpack form: endpoints as text, so the format reads the same in
// any language.
type contactWire struct {
	ID        []byte   `msgpack:"id"`
	Endpoints []string `msgpack:"ep,omitempty"`
	UPnP      []string `msgpack:"upnp,omitempty"`
	Reflected []string `msgpack:"refl,omitempty"`
	NAT       string   `msgpack:"nat,omitempty"`
}

func endpointStrings(eps []Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.String()
	}
	return out
}

// MarshalBinary encodes c as msgpack.
func (c Contact) MarshalBinary() ([]byte, error) {
	return msgpack.Marshal(contactWire{
		ID:        c.ID[:],
		Endpoints: endpointStrings(c.Endpoints),
		UPnP:      endpointStrings(c.UPnP),
		Reflected: endpointStrings(c.Reflected),
		NAT:       c.NAT,
	})
}

// UnmarshalBinary decodes msgpack from MarshalBinary. It refuses malformed input,
// more than MaxContactEndpoints endpoints and endpoints that do not parse.
func (c *Contact) UnmarshalBinary(b []byte) error {
	var w contactWire
	if err := wire.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decoding contact: %w", err)
	}
	id, err := identity.NodeIDFromBytes(w.ID)
	if err != nil {
		return fmt.Errorf("decoding contact: %w", err)
	}
	if n := len(w.Endpoints) + len(w.UPnP) + len(w.Reflected); n > MaxContactEndpoints {
		return fmt.Errorf("decoding contact: %d endpoints, at most %d", n, MaxContactEndpoints)
	}
	if err := checkNAT(w.NAT); err != nil {
		return fmt.Errorf("decoding contact: %w", err)
	}
	out := Contact{ID: id, NAT: w.NAT}
	for _, group := range []struct {
		in  []string
		out *[]Endpoint
	}{{w.Endpoints, &out.Endpoints}, {w.UPnP, &out.UPnP}, {w.Reflected, &out.Reflected}} {
		for _, s := range group.in {
			ep, err := ParseEndpoint(s)
			if err != nil {
				return fmt.Errorf("decoding contact: %w", err)
			}
			*group.out = append(*group.out, ep)
		}
	}
	*c = out
	return nil
}

// SortLANFirst orders endpoints for dialling: loopback, then other LAN addresses, then
// public ones; the order is otherwise kept.
func SortLANFirst(eps []Endpoint) []Endpoint {
	rank := func(e Endpoint) int {
		switch a := e.Addr.Addr(); {
		case a.IsLoopback():
			return 0
		case IsLAN(a):
			return 1
		default:
			return 2
		}
	}
	out := slices.Clone(eps)
	slices.SortStableFunc(out, func(a, b Endpoint) int { return rank(a) - rank(b) })
	return out
}
