package main

import (
	"bytes"
	"math"
	"testing"
)

// The header is the sequence number and the send time, 8 bytes big-endian each,
// before the padding, which encodeHeader leaves alone.
func TestPayloadHeaderBytes(t *testing.T) {
	msg := newPayload(20)
	if len(msg) != 20 || !bytes.Equal(msg, make([]byte, 20)) {
		t.Fatalf("newPayload(20) = %x, want 20 zero bytes", msg)
	}
	msg[19] = 0xee
	encodeHeader(msg, 0x0102030405060708, 0x1112131415161718)
	want := []byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0, 0, 0, 0xee,
	}
	if !bytes.Equal(msg, want) {
		t.Fatalf("encoded % x\nwant    % x", msg, want)
	}
	seq, sent, ok := decodeHeader(msg)
	if !ok || seq != 0x0102030405060708 || sent != 0x1112131415161718 {
		t.Fatalf("decoded %#x, %#x, %v", seq, sent, ok)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		seq  uint64
		sent int64
	}{{0, 0}, {1, 1}, {math.MaxUint64, math.MaxInt64}, {42, -1}, {7, math.MinInt64}} {
		msg := newPayload(headerSize)
		encodeHeader(msg, tt.seq, tt.sent)
		seq, sent, ok := decodeHeader(msg)
		if !ok || seq != tt.seq || sent != tt.sent {
			t.Errorf("(%d, %d) decoded as (%d, %d, %v)", tt.seq, tt.sent, seq, sent, ok)
		}
	}
}

func TestDecodeShortMessage(t *testing.T) {
	for _, n := range []int{0, 1, headerSize - 1} {
		if _, _, ok := decodeHeader(make([]byte, n)); ok {
			t.Errorf("a %d-byte message decoded", n)
		}
	}
	if len(newPayload(3)) != headerSize {
		t.Error("newPayload made a buffer shorter than the header")
	}
}
