// Package vnet is a virtual IPv4 datagram internet for the simulator: hosts, NAT
// routers with RFC 4787 behaviours, firewalls, and links with latency and loss, in
// one process and, with a VirtualClock, in virtual time.
//
// # Model
//
// A Network is the internet. Hosts (AddHost) and routers (AddNAT) sit on it with
// public addresses. A Router has a LAN where more hosts and routers sit with private
// addresses; a router on another router's LAN makes a double NAT (AddCGNAT). Every
// host and router has one Link to the network it sits on; a datagram crossing it
// takes the link's latency and may be lost. From host A behind NAT N to public host
// B, a datagram crosses A's link, N's link and B's link.
//
// Hosts open sockets with ListenPacket; a *PacketConn is a net.PacketConn with
// *net.UDPAddr addresses, so code written against the transport.Net interface can
// run over it.
//
// A NAT keeps mappings from inside endpoints to external ports. NATConfig picks the
// RFC 4787 mapping behaviour (what a mapping is keyed on besides the inside
// endpoint), filtering behaviour (who may send in through a mapping), port
// assignment, mapping timeout and hairpinning; FullCone, RestrictedCone,
// PortRestrictedCone, Symmetric and Firewall are the classic kinds. A firewall
// (NATConfig.FirewallOnly) translates nothing and filters like a NAT.
//
// Every hop of every datagram is scheduled on the network's Scheduler. With a
// VirtualClock, time moves only when the test advances it, and runs with the same
// seed (Config.Seed, for loss and random ports) and the same calls are identical:
// Config.Trace then gives a replayable log of each hop, and Stats counts deliveries
// and drops by reason.
//
// # Limits
//
// IPv4 and datagrams only: there are no TCP streams, no IPv6, no ICMP (a datagram
// to a closed port or an unknown address vanishes), no fragmentation or size limit,
// and no TTL (so no hop-limited firewall punches). A NAT gives every mapping its own
// external port (no port overloading) and has one public address (no address
// pooling). A mapping's filter remembers every endpoint the mapping has sent to until
// the mapping expires; per-destination filter timeouts are not modelled. Hairpinned
// datagrams pass the NAT's filter like any inbound datagram. Links are
// per-node, not per-pair: latency between two hosts is the sum of the links on the
// way. Expired mappings are removed when a datagram looks them up or when a new
// mapping is made.
package vnet
