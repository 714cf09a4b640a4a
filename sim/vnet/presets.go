package vnet

import (
	"fmt"
	"net/netip"
)

// FullCone is an endpoint-independent mapping and filtering NAT (RFC 3489's "full
// cone"): once an inside endpoint has sent anything, anyone can reach it through its
// mapping.
func FullCone() NATConfig {
	return NATConfig{Mapping: EndpointIndependent, Filtering: EndpointIndependent}
}

// RestrictedCone is an endpoint-independent mapping, address-dependent filtering NAT:
// only addresses the inside endpoint has sent to, from any port, may answer.
func RestrictedCone() NATConfig {
	return NATConfig{Mapping: EndpointIndependent, Filtering: AddressDependent}
}

// PortRestrictedCone is an endpoint-independent mapping, address-and-port-dependent
// filtering NAT, the behaviour RFC 4787 recommends and most home routers have.
func PortRestrictedCone() NATConfig {
	return NATConfig{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent}
}

// Symmetric is an address-and-port-dependent mapping and filtering NAT with random
// ports: every destination gets its own unpredictable external port, so the one a
// STUN server sees is of no use to a peer.
func Symmetric() NATConfig {
	return NATConfig{
		Mapping:        AddressAndPortDependent,
		Filtering:      AddressAndPortDependent,
		PortAssignment: Random,
	}
}

// Firewall is a stateful firewall without translation: inside hosts keep their public
// addresses and only endpoints they have sent to may send in.
func Firewall() NATConfig {
	return NATConfig{FirewallOnly: true, Filtering: AddressAndPortDependent}
}

// AddCGNAT puts a carrier-grade NAT with the public address publicAddr on the
// internet and a home router behind it, with WAN address homeWAN on the carrier's
// LAN (RFC 6598 reserves 100.64.0.0/10 for that). Hosts go on the home router's LAN
// and reach the internet through both translations.
func (n *Network) AddCGNAT(publicAddr, homeWAN netip.Addr, carrier, home NATConfig) (carrierNAT, homeNAT *Router, err error) {
	carrierNAT, err = n.AddNAT(publicAddr, carrier)
	if err != nil {
		return nil, nil, fmt.Errorf("adding carrier NAT: %w", err)
	}
	homeNAT, err = carrierNAT.AddNAT(homeWAN, home)
	if err != nil {
		return nil, nil, fmt.Errorf("adding home NAT behind the carrier NAT: %w", err)
	}
	return carrierNAT, homeNAT, nil
}
