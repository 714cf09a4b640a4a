// Package crust gives an application one direct, encrypted, authenticated connection
// to each peer it names: same LAN, public internet, or behind NATs and firewalls.
//
// A Service is one node. Its identity is an ed25519 key (the NodeID) kept in the data
// directory. Tell it which peers to connect to (Connect with a Contact), send them
// messages (Send), and read what happens from Events: PeerConnected, PeerLost,
// Message, ListenerStarted and ListenerFailed. Exactly one connection per pair of
// nodes is live at a time, however many ways the two reached each other, and the
// application sees one PeerConnected per peer until a PeerLost.
//
// Every connection is TLS 1.3 with a self-signed certificate over the node key; the
// dialer checks that the key is the NodeID it asked for.
package crust
