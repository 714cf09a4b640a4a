// Package libp2pbench benchmarks crust against go-libp2p side by side on loopback:
// message throughput over one connection (crust) or one stream (libp2p), and the time
// from dial to a usable connection, each over TCP+TLS 1.3 and over QUIC.
//
// It is a module of its own so that the crust library never depends on libp2p; see
// README.md for why and how to run it. All of it is in the _test.go files.
package libp2pbench
