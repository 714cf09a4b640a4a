package actors

import (
	"sync"
)

// Small messages (up to arenaMax) are copied back to back into 64 KiB chunks; larger
// ones get an allocation of their own. Chunks come back through recycle once written
// and go to a pool shared by all peers, which the garbage collector trims, so an idle
// peer holds none.
const (
	arenaMax  = 16 << 10
	chunkSize = 64 << 10
)

// chunk is a piece of arena: buf[:n] is taken.
type chunk struct {
	buf [chunkSize]byte
	n   int
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// sendQueue is a peer's bounded queue of outgoing messages. Many goroutines push (the
// application's Send); the live connection's writer pops everything at once, so a
// burst of small messages costs one lock and one flush. It outlives a connection
// swap: the next connection's writer drains what the last one left.
//
// Send copies the message, so the caller may reuse its buffer; with chunks recycled,
// a steady stream of small messages costs no allocation.
type sendQueue struct {
	maxMsgs, maxBytes int

	mu          sync.Mutex
	msgs        [][]byte
	chunks      []*chunk // chunks that msgs point into; the last one is being filled
	spareMsgs   [][]byte // an emptied msgs slice, from recycle
	spareChunks []*chunk // an emptied chunks slice, from recycle
	bytes       int
	closed      bool
	space       chan struct{} // closed when pop frees room, if a blocking Send waits

	ready chan struct{} // cap 1: the queue went non-empty
}

func newSendQueue(maxMsgs, maxBytes int) *sendQueue {
	return &sendQueue{maxMsgs: maxMsgs, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push copies msg into the queue. With block false a full queue is ErrQueueFull at
// once; with block true push waits for room until cancel is closed (ErrClosed) or the
// queue closes (ErrNotConnected). A message larger than maxBytes is admitted into an
// empty queue, so any message up to the frame limit can be sent.
func (q *sendQueue) push(msg []byte, block bool, cancel <-chan struct{}) error {
	var own []byte
	if len(msg) > arenaMax {
		own = append([]byte(nil), msg...) // copied outside the lock
	}
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrNotConnected
		}
		if len(q.msgs) < q.maxMsgs && (q.bytes+len(msg) <= q.maxBytes || len(q.msgs) == 0) {
			if own == nil {
				own = q.copyIn(msg)
			}
			q.msgs = append(q.msgs, own)
			q.bytes += len(msg)
			wasEmpty := len(q.msgs) == 1
			q.mu.Unlock()
			if wasEmpty {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return nil
		}
		if !block {
			q.mu.Unlock()
			return ErrQueueFull
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-cancel:
			return ErrClosed
		}
	}
}

// copyIn copies a small message into the current chunk, starting a new one when it
// does not fit. Called with mu held.
func (q *sendQueue) copyIn(msg []byte) []byte {
	n := len(q.chunks)
	if n == 0 || chunkSize-q.chunks[n-1].n < len(msg) {
		q.chunks = append(q.chunks, chunkPool.Get().(*chunk))
		n++
	}
	c := q.chunks[n-1]
	start, end := c.n, c.n+len(msg)
	copy(c.buf[start:end], msg)
	c.n = end
	return c.buf[start:end:end]
}

// pop takes every queued message, and the chunks they point into. The caller writes
// them, then passes both to recycle.
func (q *sendQueue) pop() ([][]byte, []*chunk) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs, chunks := q.msgs, q.chunks
	q.msgs, q.chunks, q.spareMsgs, q.spareChunks = q.spareMsgs, q.spareChunks, nil, nil
	q.bytes = 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return msgs, chunks
}

// recycle returns a popped batch for reuse; its messages must no longer be used.
func (q *sendQueue) recycle(msgs [][]byte, chunks []*chunk) {
	clear(msgs)
	for _, c := range chunks {
		c.n = 0
		chunkPool.Put(c)
	}
	clear(chunks)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spareMsgs == nil {
		q.spareMsgs = msgs[:0]
	}
	if q.spareChunks == nil {
		q.spareChunks = chunks[:0]
	}
}

// close drops what is queued and makes later pushes fail with ErrNotConnected.
func (q *sendQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.msgs, q.chunks, q.spareMsgs, q.spareChunks, q.bytes = nil, nil, nil, nil, 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}
