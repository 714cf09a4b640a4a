// Package identity holds a node's long-term identity: an ed25519 key pair whose public
// key is the NodeID, its persistence in the node's data directory, and the TLS 1.3
// configuration that proves it on every connection (self-signed certificate over the
// node key, ALPN "crust/1", no CA: the peer's key is checked against the NodeID the
// dialer expected).
package identity
