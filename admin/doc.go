// Package admin is the local admin API of the crust-node daemon: a Server the daemon
// runs beside its crust.Service, and a Client for the CLI and for a routing layer out
// of process.
//
// The API listens on a unix socket (mode 0600) or on loopback TCP only: it has no
// authentication, so whoever can reach it controls the node. Addresses are written
// "unix:///abs/path", "unix:relative/path", "tcp://127.0.0.1:PORT" or
// "tcp://[::1]:PORT".
//
// # Protocol
//
// Newline-delimited JSON over the stream: each request is one JSON object on one line,
// each answer one line, in the order of the requests; a connection carries any number
// of requests. Requests:
//
//	{"op":"self"}
//	{"op":"peers"}
//	{"op":"connect","contact":"<contact text>","timeout_ms":30000}
//	{"op":"disconnect","id":"<NodeID>"}
//	{"op":"send","id":"<NodeID>","text":"hello"}     (or "data":"<base64>")
//	{"op":"bootstrap"}
//	{"op":"stats"}
//	{"op":"block","target":"<NodeID or IP prefix>"}   (e.g. "192.0.2.0/24", "2001:db8::1")
//	{"op":"unblock","target":"<NodeID or IP prefix>"}
//	{"op":"blocked"}
//	{"op":"events"}
//
// Answers are {"ok":true,"result":...} (result left out when there is none) or
// {"ok":false,"error":"<reason>"}. The results are Self, []Peer, ConnectResult,
// []BootstrapEntry, Stats, BlockResult (block, unblock) and Blocked in their JSON
// form. A malformed line or an unknown op is answered with an error and the
// connection stays usable; a line longer than 1 MiB is answered with an error and the
// connection is closed. At most 32 connections are served at
// once; more get an error line and are closed. Connect holds its connection until it
// is done (30 s by default): use another connection meanwhile.
//
// "block" takes effect at once: a peer connected as the NodeID, or from an address in
// the prefix, is disconnected, and neither is dialled nor accepted afterwards. With a
// BlockStore (the daemon's) the change outlives the daemon. "unblock" undoes exactly
// one "block", or one entry of the config file's lists until the next start; a
// target that is not blocked as written is an error.
//
// "events" turns the connection into a stream: after its ok answer, every event the
// daemon publishes is one line, an Event in its JSON form, until the client closes
// the connection. Requests sent after "events" are ignored. A subscriber that falls
// behind by 1024 events (or 64 MiB) is cut off: it gets the events already queued,
// then {"type":"overflow"}, then the connection closes. The daemon never waits for a
// subscriber.
package admin
