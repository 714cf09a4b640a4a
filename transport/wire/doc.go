// Package wire is crust's frame format. After TLS, each direction is a stream of frames:
// a 4-byte big-endian length, then a msgpack envelope, the 2-element array [type, body].
// The first frame each way is a Hello; then Data, Ping/Pong, Activate and Goodbye.
//
// The decoder never trusts a length: a frame longer than the configured maximum, or one
// that is not a well-formed envelope, is an error that closes the connection. So is a
// body that nests arrays and maps more than 32 deep. Unknown message types decode as
// Unknown so that newer peers can add messages.
package wire
