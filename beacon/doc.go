// Package beacon is LAN discovery's wire format and its UDP broadcast transport.
//
// A Packet is a Query (who is there?), an Announce (I am here) or a Reply (here I am,
// and here are a few bootstrap contacts: Crust's bootstrap info in the beacon reply).
// Each carries a magic, a version, the sender's NodeID and its TCP and QUIC listen
// ports; Parse rejects anything malformed with a sentinel from errors.go, and
// Packet.Encode bounds a Reply by a size budget so that a reply is never much larger
// than the query that caused it.
//
// A Conn sends packets to a list of broadcast addresses and serves the ones it
// receives on UDP port 5483 (DefaultPort), shared by every node on the host
// (SO_REUSEADDR + SO_REUSEPORT), each of which hears every broadcast. It drops its own
// packets and packets whose source is not on a local subnet. On loopback the beacon
// uses 127.255.255.255; on a real LAN a daemon passes 255.255.255.255 together with
// DirectedBroadcasts, since a limited broadcast leaves by one interface only.
//
// The package sends and parses; when to query, how often to announce and how to
// rate-limit replies is the beacon actor's business. A Conn on an IPv6 socket (ListenAddr
// "::") uses link-local multicast instead: it joins its groups (DefaultGroup,
// ff02::5483) on every multicast interface and sends on each of them.
package beacon
