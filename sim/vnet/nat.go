package vnet

import (
	"fmt"
	"net/netip"
	"time"
)

// Behavior is an RFC 4787 mapping or filtering behaviour: what, besides the inside
// endpoint, a NAT mapping is keyed on (section 4.1), or whom a mapping lets in
// (section 5).
type Behavior int

const (
	// EndpointIndependent: one mapping per inside endpoint, whatever the
	// destination (EIM); or anyone may send in through it (EIF).
	EndpointIndependent Behavior = iota
	// AddressDependent: one mapping per inside endpoint and destination address
	// (ADM); or only addresses the inside endpoint has sent to may send in (ADF).
	AddressDependent
	// AddressAndPortDependent: one mapping per inside endpoint and destination
	// address and port (APDM); or only the address and port sent to may send in
	// (APDF).
	AddressAndPortDependent
)

// String returns "endpoint-independent", "address-dependent" or
// "address-and-port-dependent".
func (b Behavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("Behavior(%d)", int(b))
}

// PortAssignment is how a NAT picks the external port of a new mapping (RFC 4787
// section 4.2.1). Whatever the choice, a port a live mapping holds is never reused.
type PortAssignment int

const (
	// Preserving keeps the inside port if it is free, else takes the next free one.
	Preserving PortAssignment = iota
	// Sequential takes the next free port after the previous mapping's, from 1024.
	Sequential
	// Random takes a free port uniformly from 1024-65535, using the network's seeded
	// random number generator.
	Random
)

// String returns "preserving", "sequential" or "random".
func (a PortAssignment) String() string {
	switch a {
	case Preserving:
		return "preserving"
	case Sequential:
		return "sequential"
	case Random:
		return "random"
	}
	return fmt.Sprintf("PortAssignment(%d)", int(a))
}

// The external ports a NAT assigns.
const (
	firstNATPort = 1024
	lastNATPort  = 65535
)

// DefaultMappingTimeout is the mapping timeout of a NATConfig that gives none: the
// two minutes RFC 4787 REQ-5 asks for at least.
const DefaultMappingTimeout = 2 * time.Minute

// NATConfig describes a NAT (or a firewall) by RFC 4787 behaviours. The zero value is
// an endpoint-independent ("full cone") NAT that preserves ports, without
// hairpinning. presets.go has the classic kinds.
type NATConfig struct {
	// Mapping is the mapping behaviour. Default: EndpointIndependent.
	Mapping Behavior
	// Filtering is the filtering behaviour. Default: EndpointIndependent.
	Filtering Behavior
	// PortAssignment picks external ports. Default: Preserving.
	PortAssignment PortAssignment
	// MappingTimeout is how long a mapping lives after the last datagram that
	// refreshed it. Default (0): DefaultMappingTimeout; negative: forever.
	MappingTimeout time.Duration
	// InboundRefresh makes inbound datagrams refresh mappings too (RFC 4787 section
	// 4.3 allows either). Default: false, outbound only (REQ-6).
	InboundRefresh bool
	// Hairpinning lets a host send to another inside host through the NAT's public
	// address (RFC 4787 section 6); the receiver sees the sender's external
	// address. Default: false (DropNoHairpin).
	Hairpinning bool
	// FirewallOnly makes a firewall, not a NAT: no translation, the inside hosts'
	// addresses are routable from outside, and Filtering decides who may send in to
	// an inside endpoint that has sent out. Mapping, PortAssignment and Hairpinning
	// are ignored. Default: false.
	FirewallOnly bool
	// TCPUnsolicited is what the router does with an inbound SYN that no mapping and
	// filter let in: drop it silently (RFC 5382 REQ-4a) or answer with an RST, as
	// some routers do. Default: DropSYN.
	TCPUnsolicited UnsolicitedSYN
}

// Router is a NAT (or firewall) between a LAN and the network its WAN side sits on:
// the internet, or another router's LAN (carrier-grade NAT).
type Router struct {
	net *Network
	wan netip.Addr
	seg *segment // where the WAN side sits
	lan *segment
	cfg NATConfig

	// Guarded by net.mu.
	link       Link
	mappings   map[mappingKey]*mapping
	byExternal map[externalKey]*mapping
	nextPort   int              // Sequential's counter
	lastSweep  time.Time        // when sweep last ran from newMapping
	inUse      map[protocol]int // external ports held, by protocol

	// Static port mappings (portmap.go), also in byExternal: by external port, and
	// the one each inside endpoint's outbound traffic leaves through.
	statics   map[externalKey]*mapping
	staticOut map[mappingKey]*mapping
}

// sweepInterval is how often, in scheduler time, making a mapping also removes the
// expired ones (a port held by an expired mapping counts as free anyway): sweeping at
// every new mapping made a network of thousands of nodes quadratic.
const sweepInterval = 10 * time.Second

var _ node = (*Router)(nil)

// mapping is one NAT binding (or, on a firewall, one opened inside endpoint), of UDP
// or of TCP.
type mapping struct {
	key      mappingKey
	internal netip.AddrPort
	external netip.AddrPort
	expires  time.Time // zero: never
	// The endpoints (address- and port-dependent filtering) or addresses
	// (address-dependent) the inside endpoint has sent to through the mapping, for
	// filtering; nil when the filter does not ask.
	sentTo     map[netip.AddrPort]struct{}
	sentToAddr map[netip.Addr]struct{}
	// flows tracks the TCP connections through a TCP mapping by remote endpoint
	// (tcpnat.go); nil for UDP and for static mappings.
	flows map[netip.AddrPort]*tcpFlow
	// static marks a port mapping (AddPortMapping): it lets anyone in, its key has
	// no remote, and it lives until its lease ends (expires), whatever the traffic.
	static bool
}

// mappingKey finds the mapping an outbound datagram uses: the protocol, the inside
// endpoint and as much of the destination as the mapping behaviour depends on.
type mappingKey struct {
	proto    protocol
	internal netip.AddrPort
	remote   netip.AddrPort
}

// externalKey finds the mapping an inbound datagram uses: UDP and TCP mappings have
// separate external ports.
type externalKey struct {
	proto    protocol
	external netip.AddrPort
}

func newRouter(n *Network, seg *segment, wan netip.Addr, cfg NATConfig) *Router {
	if cfg.MappingTimeout == 0 {
		cfg.MappingTimeout = DefaultMappingTimeout
	}
	r := &Router{
		net: n, wan: wan, seg: seg, cfg: cfg,
		mappings:   map[mappingKey]*mapping{},
		byExternal: map[externalKey]*mapping{},
		inUse:      map[protocol]int{},
		nextPort:   firstNATPort,
		statics:    map[externalKey]*mapping{},
		staticOut:  map[mappingKey]*mapping{},
	}
	r.lan = newSegment(r)
	return r
}

// Addr returns the router's WAN address: public if it sits on the internet.
func (r *Router) Addr() netip.Addr { return r.wan }

// Network returns the network the router is part of.
func (r *Router) Network() *Network { return r.net }

// Config returns the router's configuration, with defaults filled in.
func (r *Router) Config() NATConfig { return r.cfg }

// String names the router in traces: "nat 203.0.113.1" or "firewall 203.0.113.1".
func (r *Router) String() string {
	if r.cfg.FirewallOnly {
		return "firewall " + r.wan.String()
	}
	return "nat " + r.wan.String()
}

// SetLink sets the link between the router's WAN side and its network. Default:
// Link{}.
func (r *Router) SetLink(l Link) {
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	r.link = l
}

// AddHost puts a host with address addr on the router's LAN: a private address
// behind a NAT, a public one behind a firewall.
func (r *Router) AddHost(addr netip.Addr) (*Host, error) {
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	return r.net.addHost(r.lan, addr)
}

// AddNAT puts another router on this router's LAN, with WAN address addr: the inner
// router of a double NAT.
func (r *Router) AddNAT(addr netip.Addr, cfg NATConfig) (*Router, error) {
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	return r.net.addRouter(r.lan, addr, cfg)
}

// Mappings reports how many live dynamic mappings, UDP and TCP, the router holds
// (PortMappings lists the static ones).
func (r *Router) Mappings() int {
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	r.sweep(r.net.clock.Now())
	return len(r.mappings)
}

// outerIfFirewall returns the segment outside r if r is a firewall, else nil (also
// for a nil r): inside hosts of a firewall are routed on that segment too.
func (r *Router) outerIfFirewall() *segment {
	if r == nil || !r.cfg.FirewallOnly {
		return nil
	}
	return r.seg
}

// uplink implements node.
func (r *Router) uplink() Link { return r.link }

// receive implements node: a datagram from outside, for the WAN address (or, on a
// firewall, an inside address).
func (r *Router) receive(p packet) { r.inbound(p) }

// outbound takes a datagram from the LAN to outside: find its source's port mapping,
// else find or make its mapping, translate the source, and send it on (or back in,
// when hairpinning).
func (r *Router) outbound(p packet) {
	if m := r.staticFor(p); m != nil {
		p.src = m.external
		r.net.trace(EventOutbound, r.String(), p, "")
		r.leave(p)
		return
	}
	now := r.net.clock.Now()
	key := r.keyFor(p)
	m := r.mappings[key]
	if m != nil && r.expired(m, now) {
		r.remove(m)
		m = nil
	}
	if m == nil {
		var ok bool
		if m, ok = r.newMapping(key, p.src, now); !ok {
			r.net.drop(r.String(), p, DropPortsExhausted)
			return
		}
	}
	switch r.cfg.Filtering { // only what the filter asks about is kept
	case AddressDependent:
		m.sentToAddr[p.dst.Addr()] = struct{}{}
	case AddressAndPortDependent:
		m.sentTo[p.dst] = struct{}{}
	}
	if p.proto == protoTCP {
		r.trackTCP(m, p.dst, p.flags, true, true, now)
	} else {
		r.refresh(m, now)
	}
	p.src = m.external
	r.net.trace(EventOutbound, r.String(), p, "")
	r.leave(p)
}

// leave sends translated outbound p on its way: out of the WAN side, or back in
// when it is for the router's own address and the router hairpins.
func (r *Router) leave(p packet) {
	if !r.cfg.FirewallOnly && p.dst.Addr() == r.wan {
		if !r.cfg.Hairpinning {
			r.net.drop(r.String(), p, DropNoHairpin)
			return
		}
		r.net.trace(EventHairpin, r.String(), p, "")
		r.inbound(p)
		return
	}
	r.net.up(r, r.seg, p)
}

// inbound takes a datagram from outside (or hairpinned): let it in if a live port
// mapping is there, or a live mapping whose filter allows, translating the
// destination back.
func (r *Router) inbound(p packet) {
	now := r.net.clock.Now()
	m := r.byExternal[externalKey{p.proto, p.dst}]
	if m != nil && r.expired(m, now) {
		r.remove(m)
		m = nil
	}
	if m == nil {
		r.refuse(p, DropNoMapping)
		return
	}
	if m.static { // a port mapping forwards whatever comes
		p.dst = m.internal
		r.net.trace(EventInbound, r.String(), p, "")
		r.net.deliverInside(r, p)
		return
	}
	if !r.allows(m, p.src) && !(p.proto == protoTCP && r.awaitsSYN(m, p)) {
		r.refuse(p, DropFiltered)
		return
	}
	if p.proto == protoTCP {
		r.trackTCP(m, p.src, p.flags, false, r.cfg.InboundRefresh, now)
	} else if r.cfg.InboundRefresh {
		r.refresh(m, now)
	}
	p.dst = m.internal
	r.net.trace(EventInbound, r.String(), p, "")
	r.net.deliverInside(r, p)
}

// keyFor returns the key of the mapping outbound datagram p uses.
func (r *Router) keyFor(p packet) mappingKey {
	key := mappingKey{proto: p.proto, internal: p.src}
	if r.cfg.FirewallOnly {
		return key
	}
	switch r.cfg.Mapping {
	case AddressDependent:
		key.remote = netip.AddrPortFrom(p.dst.Addr(), 0)
	case AddressAndPortDependent:
		key.remote = p.dst
	}
	return key
}

// allows reports whether the filter of m lets a datagram from src in.
func (r *Router) allows(m *mapping, src netip.AddrPort) bool {
	switch r.cfg.Filtering {
	case AddressDependent:
		_, ok := m.sentToAddr[src.Addr()]
		return ok
	case AddressAndPortDependent:
		_, ok := m.sentTo[src]
		return ok
	}
	return true
}

// newMapping makes a mapping for key, choosing its external endpoint; false if no
// port is free.
func (r *Router) newMapping(key mappingKey, internal netip.AddrPort, now time.Time) (*mapping, bool) {
	if now.Sub(r.lastSweep) >= sweepInterval {
		r.sweep(now)
		r.lastSweep = now
	}
	external := internal // a firewall does not translate
	if !r.cfg.FirewallOnly {
		port, ok := r.pickPort(key.proto, internal.Port(), now)
		if !ok {
			return nil, false
		}
		external = netip.AddrPortFrom(r.wan, port)
	}
	m := &mapping{key: key, internal: internal, external: external}
	switch r.cfg.Filtering {
	case AddressDependent:
		m.sentToAddr = map[netip.Addr]struct{}{}
	case AddressAndPortDependent:
		m.sentTo = map[netip.AddrPort]struct{}{}
	}
	if key.proto == protoTCP {
		m.flows = map[netip.AddrPort]*tcpFlow{}
	}
	r.mappings[key] = m
	r.byExternal[externalKey{key.proto, external}] = m
	r.inUse[key.proto]++
	return m, true
}

// pickPort chooses an external port free for proto by the port assignment behaviour
// (a port whose mapping has expired is free: that mapping goes).
func (r *Router) pickPort(proto protocol, internalPort uint16, now time.Time) (uint16, bool) {
	free := func(p int) bool {
		m, taken := r.byExternal[externalKey{proto, netip.AddrPortFrom(r.wan, uint16(p))}]
		if taken && r.expired(m, now) {
			r.remove(m)
			return true
		}
		return !taken
	}
	if r.inUse[proto] >= lastNATPort-firstNATPort+1 {
		// Every port is held: only expired mappings can give one back.
		r.sweep(now)
		r.lastSweep = now
		if r.inUse[proto] >= lastNATPort-firstNATPort+1 {
			return 0, false
		}
	}
	start := r.nextPort
	switch r.cfg.PortAssignment {
	case Preserving:
		if internalPort != 0 && free(int(internalPort)) {
			return internalPort, true
		}
		start = max(int(internalPort), firstNATPort)
	case Random:
		for range 64 { // a few draws find a free port unless the NAT is nearly full
			p := firstNATPort + r.net.rng.IntN(lastNATPort-firstNATPort+1)
			if free(p) {
				return uint16(p), true
			}
		}
	}
	// From start upwards, wrapping around.
	for i := range lastNATPort - firstNATPort + 1 {
		p := firstNATPort + (start-firstNATPort+i)%(lastNATPort-firstNATPort+1)
		if free(p) {
			if r.cfg.PortAssignment == Sequential {
				r.nextPort = p + 1
				if r.nextPort > lastNATPort {
					r.nextPort = firstNATPort
				}
			}
			return uint16(p), true
		}
	}
	return 0, false
}

func (r *Router) refresh(m *mapping, now time.Time) {
	if r.cfg.MappingTimeout > 0 {
		m.expires = now.Add(r.cfg.MappingTimeout)
	}
}

func (r *Router) expired(m *mapping, now time.Time) bool {
	return !m.expires.IsZero() && !now.Before(m.expires)
}

func (r *Router) remove(m *mapping) {
	if m.static {
		r.forgetStatic(m)
	} else if r.mappings[m.key] == m {
		delete(r.mappings, m.key)
	}
	if k := (externalKey{m.key.proto, m.external}); r.byExternal[k] == m {
		delete(r.byExternal, k)
		r.inUse[m.key.proto]--
	}
}

// sweep removes every expired mapping. Mappings otherwise expire lazily: when a
// datagram looks them up, or when their port is wanted for a new one.
func (r *Router) sweep(now time.Time) {
	for _, m := range r.mappings {
		if r.expired(m, now) {
			r.remove(m)
		}
	}
	for _, m := range r.statics {
		if r.expired(m, now) {
			r.remove(m)
		}
	}
}
