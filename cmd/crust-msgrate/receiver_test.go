package main

import (
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// The loss from one peer is the sequence numbers below the highest seen that did not
// arrive; a duplicate never makes it negative.
func TestSeqCountLost(t *testing.T) {
	for _, tt := range []struct {
		name string
		seqs []uint64
		want uint64
	}{
		{"nothing", nil, 0},
		{"in order", []uint64{0, 1, 2, 3}, 0},
		{"a gap", []uint64{0, 1, 3}, 1},
		{"gaps", []uint64{0, 4, 5, 9}, 6},
		{"the first ones lost", []uint64{5}, 5},
		{"a duplicate", []uint64{0, 1, 1, 2}, 0},
		{"duplicates hiding a gap count no less than zero", []uint64{0, 0, 0, 0, 2}, 0},
		{"a reconnect that dropped a queue", []uint64{0, 1, 2, 10, 11}, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c seqCount
			for _, s := range tt.seqs {
				c.add(s)
			}
			if got := c.lost(); got != tt.want {
				t.Errorf("lost %d, want %d", got, tt.want)
			}
			if c.received != uint64(len(tt.seqs)) {
				t.Errorf("received %d, want %d", c.received, len(tt.seqs))
			}
		})
	}
}

// The receiver counts each peer's sequence numbers apart, sums their losses, times each
// message from its header, and counts short messages as malformed.
func TestReceiverRecord(t *testing.T) {
	a, b := crust.NodeID{1}, crust.NodeID{2}
	r := newReceiver()
	now := time.Unix(1000, 0).UnixNano()
	msg := newPayload(64)
	send := func(from crust.NodeID, seq uint64, latency time.Duration) {
		encodeHeader(msg, seq, now-int64(latency))
		r.record(from, msg, now)
	}
	send(a, 0, time.Millisecond)
	send(a, 2, 2*time.Millisecond) // 1 lost
	send(b, 0, 3*time.Millisecond)
	send(b, 1, 4*time.Millisecond) // a's gap does not hide here
	r.record(b, []byte("hello"), now)

	got := r.snapshot()
	if got.msgs != 5 || got.bytes != 4*64+5 || got.malformed != 1 || got.lost != 1 {
		t.Errorf("snapshot: %d msgs, %d bytes, %d malformed, %d lost; want 5, 261, 1, 1", got.msgs, got.bytes, got.malformed, got.lost)
	}
	if got.latency.total != 4 || got.latency.max != int64(4*time.Millisecond) {
		t.Errorf("latency: %d samples, max %v; want 4, 4ms", got.latency.total, time.Duration(got.latency.max))
	}
	if msgs, bytes := r.counts(); msgs != 5 || bytes != 261 {
		t.Errorf("counts %d, %d; want 5, 261", msgs, bytes)
	}
	// The snapshot is a copy: later messages do not change it.
	send(a, 3, time.Millisecond)
	if got.latency.total != 4 || got.msgs != 5 {
		t.Error("a later message changed the snapshot")
	}
}
