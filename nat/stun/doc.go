// Package stun learns the node's external (mapped) address with STUN Binding
// requests (RFC 5389), over UDP and over TCP, and compares the answers of several
// servers to tell how the NAT in front of us maps endpoints (RFC 4787, RFC 5780).
//
// Over UDP the Binding shares a socket that someone else owns (the QUIC transport's):
// [UDP] only builds and parses messages. The owner passes it a send function and
// feeds [UDP.HandlePacket] every datagram it does not recognise itself. That is why
// this package uses pion's message API and not pion's Client, which would take the
// connection over.
//
// Over TCP the caller supplies the dial function, so that it can bind the local port
// of its TCP listener (SO_REUSEADDR + SO_REUSEPORT): the mapping STUN reports is then
// the one peers can reach.
//
// [Resolve] asks several servers at once and checks that they agree; [Classify]
// turns the answers for one local socket into a NAT [Behavior].
package stun
