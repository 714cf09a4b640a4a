package main

import (
	"sync"
	"time"

	"github.com/crust-p2p/crust"
)

// receiver counts the messages that arrive: how many from each peer and the highest
// sequence number among them (for the loss), and every message's latency. Its handle
// method is the node's crust.Config.OnMessage, which runs on the connections' reader
// goroutines, concurrently for different peers: it takes one short lock and allocates
// nothing but a peer's first entry.
type receiver struct {
	mu sync.Mutex
	// from has an entry for each peer a message came from.
	from map[crust.NodeID]*seqCount
	// latency counts receive time minus send time.
	latency histogram
	// msgs and bytes count the messages and their bytes, malformed ones included.
	msgs, bytes uint64
	// malformed counts messages too short to carry a header.
	malformed uint64
}

// newReceiver returns a receiver that has counted nothing yet.
func newReceiver() *receiver {
	return &receiver{from: make(map[crust.NodeID]*seqCount)}
}

// handle records a message as it arrives (crust.Config.OnMessage).
func (r *receiver) handle(m crust.Message) { r.record(m.From, m.Data, time.Now().UnixNano()) }

// record counts msg from a peer, received at nowNanos (Unix nanoseconds).
func (r *receiver) record(from crust.NodeID, msg []byte, nowNanos int64) {
	seq, sent, ok := decodeHeader(msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs++
	r.bytes += uint64(len(msg))
	if !ok {
		r.malformed++
		return
	}
	c := r.from[from]
	if c == nil {
		c = &seqCount{}
		r.from[from] = c
	}
	c.add(seq)
	r.latency.record(nowNanos - sent)
}

// counts returns the messages and bytes received so far.
func (r *receiver) counts() (msgs, bytes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs, r.bytes
}

// received is what a receiver has counted, at one moment.
type received struct {
	msgs, bytes, malformed uint64
	// lost is the messages lost, summed over the peers (seqCount.lost).
	lost uint64
	// latency is a copy of the receiver's histogram.
	latency histogram
}

// snapshot returns the counts so far. Messages still arriving do not change it.
func (r *receiver) snapshot() received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := received{msgs: r.msgs, bytes: r.bytes, malformed: r.malformed, latency: r.latency}
	for _, c := range r.from {
		out.lost += c.lost()
	}
	return out
}

// seqCount is what arrived from one peer: how many messages and the highest sequence
// number. A peer numbers its messages to us 0, 1, 2, ..., and one connection delivers
// them in order, so every number below the highest that did not arrive was lost (a
// message dropped from a send queue when a connection broke, say), while a message
// still in flight is above the highest and not counted.
type seqCount struct {
	// received is how many messages arrived.
	received uint64
	// next is the highest sequence number seen plus one; 0 before any.
	next uint64
}

// add counts a message with sequence number seq.
func (c *seqCount) add(seq uint64) {
	c.received++
	c.next = max(c.next, seq+1)
}

// lost returns how many sequence numbers below the highest seen did not arrive. A
// duplicate would make received exceed next: that counts as no loss, not a negative
// one.
func (c seqCount) lost() uint64 {
	if c.received >= c.next {
		return 0
	}
	return c.next - c.received
}
