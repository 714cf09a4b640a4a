// Package sim runs crust's real nodes (crust.Service: the same actors, ladder,
// rendezvous, one-connection rule and punch code) on a virtual internet (sim/vnet)
// whose routers follow RFC 4787's NAT behaviours, to prove the logic at a breadth
// and scale one machine's namespaces cannot host.
//
// Net adapts a vnet host to transport.Net, so the transports open their sockets on
// the virtual network; STUNServer answers Binding requests there as coturn does in
// the real testbed (RFC 5780 OTHER-ADDRESS included); an IGD is a UPnP gateway for
// a router, on its LAN, that crust's UPnP client maps ports on as on miniupnpd. A
// Pair builds one scenario: a rendezvous node and two STUN servers on the internet,
// node A and node B each behind a Kind of router (or none, or a home router behind a
// carrier-grade NAT, or one with a UPnP gateway), and has A connect to B. A Matrix runs a Pair
// for every ordered pair of Kinds and protocol set and compares each outcome with
// Possible, the theory of which pairs can connect directly; Result prints it as a
// table (Table) and a heatmap (SVG).
//
// Time is real (quic-go, TLS and the actors keep real timers); the network's random
// choices (the ports a symmetric NAT picks) follow the seed. The hop-limited
// firewall punch does not run here: vnet has no TTL (the real testbed covers it).
//
// The testbed/ package runs the real binaries behind real Linux NAT in network
// namespaces.
package sim
