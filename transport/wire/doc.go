// Package wire is crust's frame format. After TLS, each direction is a stream of frames:
// a 4-byte big-endian length, then a msgpack envelope, the 2-element array [type, body].
// The first frame each way is a Hello; then Data, Ping/Pong, Activate, Ack, Relay and
// Goodbye. Fields added since the first version are optional and omitted when empty,
// so older peers ignore them: Hello.Acks (the sender acknowledges Data with Ack),
// Hello.Stream and Hello.Resume (a stream of Data resumed after a fault),
// Activate.Streams (the deciding node's plan for both streams) and Goodbye.Dropped
// (the sender dropped the Data sent on a connection it never took live).
//
// The decoder never trusts a length: a frame longer than the configured maximum, or one
// that is not a well-formed envelope, is an error that closes the connection. So is a
// body that nests arrays and maps more than 32 deep. Unknown message types decode as
// Unknown so that newer peers can add messages.
package wire
