// Package actors runs a crust node on hollywood actors: a Supervisor that owns the
// registry NodeID → Peer actor and routes connections, one Peer actor per remote node
// that owns the node pair's one live connection, and a Listener actor per transport
// listener that accepts and handshakes.
//
// Control runs through actors; user data does not. Send puts bytes on the peer's
// bounded sendQueue, which the live connection's writer goroutine drains in batches;
// a connection's reader goroutine hands messages straight to the Emitter. The actor hop
// happens per connection event, not per message.
package actors
