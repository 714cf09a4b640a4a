package vnet

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// PortMapping is a static port mapping on a NAT, as a UPnP IGD's AddPortMapping (or
// NAT-PMP, PCP) makes one: the router forwards what reaches its WAN address on the
// external port to the internal endpoint, from anyone, whatever its filtering
// behaviour; and what the internal endpoint sends leaves through the external port.
type PortMapping struct {
	// Proto is "tcp" or "udp".
	Proto string
	// External is the port on the router's WAN address.
	External uint16
	// Internal is the endpoint on the router's LAN the port forwards to.
	Internal netip.AddrPort
	// Expires is when the lease ends; zero for a permanent mapping.
	Expires time.Time
}

// AddPortMapping maps external port external of proto ("tcp" or "udp") on the
// router's WAN address to internal, for lease (0: permanent). From then on, until
// the lease ends or DeletePortMapping:
//
//   - a datagram or segment from anyone to that port is let in and sent to internal,
//     whatever the router's filtering behaviour, as a UPnP IGD's port forwarding does;
//   - what internal sends, to any destination, leaves through that port, so
//     replies, TCP connections and QUIC work both ways. (On Linux with miniupnpd the
//     forwarding is a DNAT rule: replies to what came in leave through the port, and
//     internal's own flows do too where SNAT preserves their source port, as it does
//     when the external port is internal's own. The model does not tell replies from
//     new flows apart.)
//
// Mapping the same port to the same endpoint again renews the lease. A port that a
// dynamic mapping of another inside endpoint holds, or that is mapped to another
// endpoint, fails with ErrPortMappingConflict (UPnP's 718 ConflictInMappingEntry); a
// dynamic mapping of internal itself on that port (internal has sent out already and
// its port was preserved) becomes the static one. A firewall, which translates
// nothing, has no port mappings.
func (r *Router) AddPortMapping(proto string, external uint16, internal netip.AddrPort, lease time.Duration) error {
	p, err := parseProto(proto)
	if err != nil {
		return err
	}
	internal = netip.AddrPortFrom(internal.Addr().Unmap(), internal.Port())
	switch {
	case r.cfg.FirewallOnly:
		return fmt.Errorf("mapping %s port %d on %v: a firewall does not translate, so it has no port mappings", proto, external, r)
	case external == 0 || internal.Port() == 0:
		return fmt.Errorf("mapping %s port %d to %v on %v: port 0", proto, external, internal, r)
	case !internal.Addr().Is4():
		return fmt.Errorf("mapping %s port %d to %v on %v: %w", proto, external, internal, r, ErrNotIPv4)
	case lease < 0:
		return fmt.Errorf("mapping %s port %d to %v on %v: negative lease %v", proto, external, internal, r, lease)
	}

	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	now := r.net.clock.Now()
	ext := externalKey{p, netip.AddrPortFrom(r.wan, external)}
	if m := r.byExternal[ext]; m != nil {
		switch {
		case r.expired(m, now):
			r.remove(m)
		case m.internal != internal:
			return fmt.Errorf("mapping %s port %d to %v on %v: %w (to %v)", proto, external, internal, r, ErrPortMappingConflict, m.internal)
		case m.static:
			m.expires = leaseEnd(now, lease)
			return nil
		default: // internal's own dynamic mapping: the static one takes its place
			r.remove(m)
		}
	}
	m := &mapping{
		key:      mappingKey{proto: p, internal: internal},
		internal: internal,
		external: ext.external,
		expires:  leaseEnd(now, lease),
		static:   true,
	}
	r.statics[ext] = m
	r.byExternal[ext] = m
	r.inUse[p]++
	if _, ok := r.staticOut[m.key]; !ok {
		r.staticOut[m.key] = m
	}
	return nil
}

// DeletePortMapping removes the static mapping of external port external of proto;
// ErrNoPortMapping if there is none (UPnP's 714 NoSuchEntryInArray).
func (r *Router) DeletePortMapping(proto string, external uint16) error {
	p, err := parseProto(proto)
	if err != nil {
		return err
	}
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	m := r.liveStatic(externalKey{p, netip.AddrPortFrom(r.wan, external)}, r.net.clock.Now())
	if m == nil {
		return fmt.Errorf("deleting %s port %d on %v: %w", proto, external, r, ErrNoPortMapping)
	}
	r.remove(m)
	return nil
}

// PortMapping returns the static mapping of external port external of proto, if
// one is live.
func (r *Router) PortMapping(proto string, external uint16) (PortMapping, bool) {
	p, err := parseProto(proto)
	if err != nil {
		return PortMapping{}, false
	}
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	m := r.liveStatic(externalKey{p, netip.AddrPortFrom(r.wan, external)}, r.net.clock.Now())
	if m == nil {
		return PortMapping{}, false
	}
	return m.portMapping(), true
}

// PortMappings lists the live static mappings, TCP then UDP, by external port.
func (r *Router) PortMappings() []PortMapping {
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	now := r.net.clock.Now()
	var out []PortMapping
	for _, m := range r.statics {
		if !r.expired(m, now) {
			out = append(out, m.portMapping())
		}
	}
	slices.SortFunc(out, func(a, b PortMapping) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.External, b.External))
	})
	return out
}

// liveStatic returns the static mapping at ext unless it has expired (then it
// goes); r.net.mu is held.
func (r *Router) liveStatic(ext externalKey, now time.Time) *mapping {
	m := r.statics[ext]
	if m != nil && r.expired(m, now) {
		r.remove(m)
		m = nil
	}
	return m
}

// staticFor returns the live static mapping outbound p leaves through: one to p's
// source, if there is one; r.net.mu is held.
func (r *Router) staticFor(p packet) *mapping {
	if len(r.staticOut) == 0 {
		return nil
	}
	key := mappingKey{proto: p.proto, internal: p.src}
	m := r.staticOut[key]
	if m != nil && r.expired(m, r.net.clock.Now()) {
		r.remove(m)
		m = r.staticOut[key] // another one to the same endpoint, if any
	}
	return m
}

// forgetStatic takes static mapping m out of the static tables, and lets outbound
// traffic of its endpoint use another static mapping to it if there is one;
// r.net.mu is held.
func (r *Router) forgetStatic(m *mapping) {
	ext := externalKey{m.key.proto, m.external}
	if r.statics[ext] == m {
		delete(r.statics, ext)
	}
	if r.staticOut[m.key] != m {
		return
	}
	delete(r.staticOut, m.key)
	for _, o := range r.statics {
		if o.key == m.key && (r.staticOut[m.key] == nil || o.external.Port() < r.staticOut[m.key].external.Port()) {
			r.staticOut[m.key] = o // the lowest port, so that runs repeat
		}
	}
}

func (m *mapping) portMapping() PortMapping {
	return PortMapping{Proto: m.key.proto.String(), External: m.external.Port(), Internal: m.internal, Expires: m.expires}
}

// leaseEnd is when a lease taken at now ends; zero for a permanent one.
func leaseEnd(now time.Time, lease time.Duration) time.Time {
	if lease == 0 {
		return time.Time{}
	}
	return now.Add(lease)
}

// parseProto reads "tcp" or "udp".
func parseProto(proto string) (protocol, error) {
	switch proto {
	case "tcp":
		return protoTCP, nil
	case "udp":
		return protoUDP, nil
	}
	return 0, fmt.Errorf("vnet: protocol %q: want \"tcp\" or \"udp\"", proto)
}
