// Package actors runs a crust node on hollywood actors: a Supervisor that owns the
// registry NodeID → Peer actor and routes connections, one Peer actor per remote node
// that owns the node pair's one live connection, and a Listener actor per transport
// listener that accepts and handshakes.
//
// Control runs through actors; user data does not. Send encodes the message as a
// frame on the peer's bounded sendQueue, which the live connection's writer drains in
// batches (a goroutine that runs only while there is something to write); a
// connection's reader goroutine hands batches of messages to the Emitter, or each
// message to Config.OnMessage. The actor hop happens per connection event, not per
// message.
package actors
