package main

import "encoding/binary"

// headerSize is the bytes every message starts with: an 8-byte sequence number and an
// 8-byte send time, both big-endian. The rest of a message, up to -size, is zeros.
const headerSize = 16

// newPayload returns a message buffer of size bytes (at least headerSize), all zeros:
// a sender fills in the header before each Send and reuses the buffer, since Send
// copies it.
func newPayload(size int) []byte { return make([]byte, max(size, headerSize)) }

// encodeHeader writes seq, the message's sequence number to its destination peer,
// and sentNanos, the send time in Unix nanoseconds, into the first headerSize bytes
// of msg. The padding after them is left as it is.
func encodeHeader(msg []byte, seq uint64, sentNanos int64) {
	binary.BigEndian.PutUint64(msg[0:8], seq)
	binary.BigEndian.PutUint64(msg[8:16], uint64(sentNanos))
}

// decodeHeader reads what encodeHeader wrote. ok is false for a message shorter than
// headerSize, which crust-msgrate did not send.
func decodeHeader(msg []byte) (seq uint64, sentNanos int64, ok bool) {
	if len(msg) < headerSize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(msg[0:8]), int64(binary.BigEndian.Uint64(msg[8:16])), true
}
