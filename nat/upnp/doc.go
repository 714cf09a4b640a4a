// Package upnp keeps TCP and UDP port mappings for our listen ports on a UPnP
// Internet Gateway Device (IGD), so that peers on the internet can reach a node
// behind a home router.
//
// [Discover] finds a gateway, either by SSDP search on the LAN or, with
// [Config.RootURL], straight from its root description URL (no multicast at all),
// and picks one connection service in this order of preference: WANIPConnection:2,
// WANIPConnection:1, WANPPPConnection:1. A [Gateway] reads the external address and
// adds, reads and deletes single port mappings.
//
// A [Mapper] owns the mappings for a set of listen ports: it maps each one (the same
// external port as the internal one where the gateway allows, another port when the
// gateway reports a conflict), renews leases at half their duration, checks that the
// gateway still has them (a gateway that restarted forgets its mappings), follows a
// change of external address, re-discovers a gateway that stopped answering (with
// backoff), and deletes the mappings when it is closed.
//
// SOAP and description parsing is done by github.com/huin/goupnp; this package
// fetches the root description itself, so that it can bound the answer's size, use
// the caller's HTTP client, and learn the local address the gateway sees us at (the
// internal client of every mapping).
package upnp
