// Package nat is NAT and firewall traversal, below the actors: [Prober] asks STUN
// servers (package nat/stun) how the node's listen sockets look from outside, over UDP
// from the QUIC socket and over TCP from the TCP listen port, and classifies the NAT's
// mapping behaviour; package nat/upnp keeps port mappings on the LAN's gateway. Hole
// punching and the hop-limited firewall punch come next.
package nat
