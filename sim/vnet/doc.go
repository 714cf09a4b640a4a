// Package vnet is a virtual IPv4 internet for the simulator: hosts with datagram
// sockets and TCP-like streams, NAT routers with RFC 4787 and RFC 5382 behaviours,
// firewalls, and links with latency and loss, in one process and, with a
// VirtualClock, in virtual time.
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
// A NAT also keeps static port mappings (Router.AddPortMapping), as a UPnP IGD makes
// them: an external port forwarded to an inside endpoint for a lease, open to anyone
// whatever the filtering, and the port the endpoint's own traffic leaves through.
//
// Every hop of every datagram and stream segment is scheduled on the network's Scheduler. With a
// VirtualClock, time moves only when the test advances it, and runs with the same
// seed (Config.Seed, for loss and random ports) and the same calls are identical:
// Config.Trace then gives a replayable log of each hop, and Stats counts deliveries
// and drops by reason.
//
// # Streams
//
// Hosts also open stream listeners (Listen) and connections (Dial from an ephemeral
// port, DialFrom from a given one); a *Listener is a net.Listener and a *StreamConn a
// net.Conn, with *net.TCPAddr addresses. Streams and datagrams have separate ports:
// a UDP socket and a TCP listener may both hold port P. A connection is a handful of
// segments, SYN, SYN-ACK, ACK, data, FIN and RST, routed like datagrams over the same
// links and NATs. The handshake follows RFC 793 closely enough for TCP hole punching:
// a listener's port is shared with DialFrom (as SO_REUSEADDR|SO_REUSEPORT), one
// connection per 4-tuple; a SYN for a 4-tuple whose socket is connecting makes a
// simultaneous open; a SYN for a port with a listener makes a connection Accept
// returns; a SYN for a port with neither is answered with an RST (ECONNREFUSED). An
// unanswered SYN is retransmitted after 1 s, 2 s, 4 s, ..., as Linux does.
//
// NATs map and filter streams as datagrams (RFC 5382 asks for the same behaviours),
// in mappings of their own. An inbound SYN passes a mapping whose inside socket is
// connecting to the SYN's source (the simultaneous open of a punch); one that no
// mapping and filter let in is dropped silently or, with NATConfig.TCPUnsolicited
// RejectSYN, answered with an RST. A mapping with an established connection lives
// TCPEstablishedTimeout after its last segment; otherwise it has MappingTimeout.
//
// # Limits
//
// IPv4 only: there is no IPv6, no ICMP (a datagram to a closed port or an unknown
// address vanishes), no fragmentation or size limit, and no TTL (so no hop-limited
// firewall punches).
//
// Streams are a model of TCP, not TCP: segments are never lost (Link.Loss applies to
// datagrams only) and carry no sequence numbers beyond what puts them back in order,
// there are no windows, no congestion control and no Nagle (each Write is one
// segment, and receive buffers are unbounded), no TIME_WAIT state (Close frees the
// 4-tuple at once; for TimeWait after a FIN the host only drops the peer's late ACKs
// and FIN silently), no keepalives, no urgent data and no MSS. A Dial gives up after six SYN
// retransmissions (127 s) with ETIMEDOUT, or earlier when its ctx ends. A NAT does
// not answer unsolicited SYNs with ICMP and does not hold them for RFC 5382 REQ-4's
// six seconds. A NAT gives every mapping its own
// external port (no port overloading) and has one public address (no address
// pooling). A mapping's filter remembers every endpoint the mapping has sent to until
// the mapping expires; per-destination filter timeouts are not modelled. Hairpinned
// datagrams pass the NAT's filter like any inbound datagram. Links are
// per-node, not per-pair: latency between two hosts is the sum of the links on the
// way. Expired mappings are removed when a datagram looks them up or when a new
// mapping is made.
package vnet
