package stun

import "net/netip"

// Behavior is how a NAT maps one local socket to external endpoints (RFC 4787 §4.1),
// as far as STUN answers can tell.
type Behavior string

const (
	// Unknown means the answers cannot tell: fewer than two servers at different
	// addresses answered.
	Unknown Behavior = "unknown"
	// NoNAT means the servers saw our local address: nothing translates it (there may
	// still be a firewall).
	NoNAT Behavior = "no-nat"
	// EndpointIndependent means servers at different addresses saw the same mapped
	// address: a peer can reach us at the address STUN reports ("easy" NAT).
	EndpointIndependent Behavior = "endpoint-independent"
	// EndpointDependent means servers at different addresses saw different mapped
	// addresses (symmetric or "hard" NAT): the address STUN reports is useless to a
	// peer, and hole punching needs port prediction or a relay.
	EndpointDependent Behavior = "endpoint-dependent"
)

// Classify compares the mapped addresses that several servers reported for the
// same local socket, bound to local (its specific address: a socket bound to
// 0.0.0.0 cannot be told from no NAT). Results without a mapped address are ignored.
//
// It returns NoNAT if every answer is local itself; EndpointDependent if two servers
// at different addresses (another IP, or the same IP and another port) saw
// different mapped addresses; EndpointIndependent if they all saw the same one; and
// Unknown if no two answers come from servers at different addresses.
func Classify(local netip.AddrPort, results ...Result) Behavior {
	var valid []Result
	for _, r := range results {
		if r.Mapped.IsValid() {
			valid = append(valid, r)
		}
	}
	if len(valid) == 0 {
		return Unknown
	}
	noNAT := local.IsValid()
	for _, r := range valid {
		noNAT = noNAT && sameEndpoint(r.Mapped, local)
	}
	if noNAT {
		return NoNAT
	}

	compared := false
	for i, a := range valid {
		for _, b := range valid[i+1:] {
			if sameServer(a, b) {
				continue
			}
			if !sameEndpoint(a.Mapped, b.Mapped) {
				return EndpointDependent
			}
			compared = true
		}
	}
	if !compared {
		return Unknown
	}
	return EndpointIndependent
}

// sameServer reports whether two results come from the same server address: the
// addresses we sent to if both were named by address, else the addresses the
// responses came from if both say, else the names.
func sameServer(a, b Result) bool {
	ap, errA := netip.ParseAddrPort(a.Server)
	bp, errB := netip.ParseAddrPort(b.Server)
	switch {
	case errA == nil && errB == nil:
		return sameEndpoint(ap, bp)
	case a.Origin.IsValid() && b.Origin.IsValid():
		return sameEndpoint(a.Origin, b.Origin)
	}
	return a.Server == b.Server
}
