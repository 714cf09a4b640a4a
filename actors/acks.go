package actors

import (
	"bytes"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport/wire"
)

// Send's promise: a message Send accepted is delivered, or comes back in an
// Undelivered event; it is never dropped without a word. The receiving side of a
// connection acknowledges what it handed to the application (wire.Ack, a count); the
// sending side keeps what it wrote until then. When a connection fails, what it wrote
// and the peer did not acknowledge is reported as maybe delivered, and when the
// session ends, what was still queued is reported as not sent; unless the session
// ended in a fault and we reconnect, when both are held for a resume (resume.go).
//
// Peers whose Hello lacks Acks (older versions) are not kept for: their connections
// report only what was never sent.

// ackEvery is how often, at most, a reader acknowledges: a busy connection sends one
// Ack per 5 ms, an idle one an Ack 5 ms after its last message. ackBytes sooner:
// every MiB of payload, so that a fast sender, which holds back once SendQueueBytes
// wait unacknowledged, is not held back by the 5 ms.
const (
	ackEvery = 5 * time.Millisecond
	ackBytes = 1 << 20
)

// acker is a connection's receiving side of the promise.
type acker struct {
	mu        sync.Mutex
	delivered uint64      // messages handed to the application
	bytes     int         // their payload bytes since the last Ack
	sent      uint64      // the Count of the last Ack written
	at        time.Time   // when it was written
	timer     *time.Timer // a deferred Ack, if one is due
}

// delivered counts n messages of size payload bytes handed on and acknowledges them,
// now or within ackEvery.
func (cs *connState) delivered(n, size int) {
	if n <= 0 || !cs.peerAcks {
		return
	}
	a := &cs.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	a.delivered += uint64(n)
	a.bytes += size
	cs.ackLocked(a.bytes >= ackBytes)
}

// ackLocked writes an Ack if there is news and it is time (or now is set); otherwise
// it arms the timer for one. Called with acks.mu held.
func (cs *connState) ackLocked(now bool) {
	a := &cs.acks
	if a.delivered == a.sent {
		return
	}
	t := cs.node.clock.Now()
	if wait := ackEvery - t.Sub(a.at); !now && wait > 0 {
		if a.timer == nil {
			a.timer = time.AfterFunc(wait, func() {
				a.mu.Lock()
				defer a.mu.Unlock()
				a.timer = nil
				if !isClosed(cs.abort) {
					cs.ackLocked(true)
				}
			})
		}
		return
	}
	a.sent, a.at, a.bytes = a.delivered, t, 0
	cs.control(wire.Ack{Count: a.delivered})
}

// sentLog is a connection's sending side of the promise: what its writer wrote, in
// order, until the peer acknowledges it.
type sentLog struct {
	mu      sync.Mutex
	written uint64        // messages written on the connection
	acked   uint64        // the peer's latest Ack
	batches []sentBatch   // written and not all acknowledged, oldest first
	bytes   int           // their payload bytes
	room    chan struct{} // closed when an Ack frees room, if the writer waits for it
}

// sentBatch is one popped batch, written; end is the written count after it.
type sentBatch struct {
	o   outgoing
	end uint64
}

// keep records o as written; it is recycled once acknowledged.
func (l *sentLog) keep(o outgoing) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written += uint64(o.msgs)
	l.batches = append(l.batches, sentBatch{o: o, end: l.written})
	l.bytes += o.bytes
}

// ack takes the peer's count: whole batches it covers go back to the pool.
func (l *sentLog) ack(count uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if count <= l.acked || count > l.written {
		return // stale, or more than we wrote: ignored
	}
	l.acked = count
	i := 0
	for ; i < len(l.batches) && l.batches[i].end <= count; i++ {
		l.bytes -= l.batches[i].o.bytes
		l.batches[i].o.free()
	}
	l.batches = append(l.batches[:0], l.batches[i:]...)
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
}

// full reports whether the unacknowledged bytes are at max or beyond.
func (l *sentLog) full(max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes >= max
}

// waitRoom waits while the unacknowledged bytes are at max or beyond; false if abort
// closed first.
func (l *sentLog) waitRoom(max int, abort <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.bytes < max {
			l.mu.Unlock()
			return true
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.mu.Unlock()
		select {
		case <-room:
		case <-abort:
			return false
		}
	}
}

// unacked returns copies of the messages written and not acknowledged, in order,
// with the stream number of the first, and forgets them.
func (l *sentLog) unacked() (first uint64, out [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range l.batches {
		msgs := b.o.messages()
		skip := uint64(0)
		if start := b.end - uint64(b.o.msgs); l.acked > start {
			skip = l.acked - start
		}
		if i == 0 {
			first = b.o.first + skip
		}
		out = append(out, msgs[skip:]...)
		b.o.free()
	}
	l.batches, l.bytes = nil, 0
	return first, out
}

// messages returns copies of the messages in o, in order.
func (o outgoing) messages() [][]byte {
	out := make([][]byte, 0, o.msgs)
	for _, seg := range o.segs {
		if seg.frames == nil {
			out = append(out, bytes.Clone(seg.large))
			continue
		}
		r := wire.NewReader(bytes.NewReader(seg.frames), len(seg.frames), wire.DefaultMaxFrameSize)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				break // the end of the run: we encoded it
			}
			out = append(out, f.Data)
		}
	}
	return out
}

// free returns o's chunks to the pool; its segments must no longer be used.
func (o outgoing) free() {
	for _, c := range o.chunks {
		c.n = 0
		chunkPool.Put(c)
	}
}
