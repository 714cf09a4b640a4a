package actors

import (
	"sync"
)

// arenaMax is the largest message copied into the queue's arena; larger ones get an
// allocation of their own. recycleMax is the largest arena kept for reuse, so an idle
// peer holds little memory after a burst.
const (
	arenaMax   = 16 << 10
	recycleMax = 1 << 20
)

// sendQueue is a peer's bounded queue of outgoing messages. Many goroutines push (the
// application's Send); the live connection's writer pops everything at once, so a
// burst of small messages costs one lock and one flush. It outlives a connection
// swap: the next connection's writer drains what the last one left.
//
// Small messages are copied back to back into an arena, so Send does not allocate in
// the steady state: the writer hands each popped arena back with recycle once its
// bytes are written.
type sendQueue struct {
	maxMsgs, maxBytes int

	mu     sync.Mutex
	msgs   [][]byte
	arena  []byte
	spare  [][]byte // a popped msgs slice, returned by recycle
	free   []byte   // a popped arena, returned by recycle
	bytes  int
	closed bool
	space  chan struct{} // closed when pop frees room, if a blocking Send waits

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
				start := len(q.arena)
				q.arena = append(q.arena, msg...)
				own = q.arena[start:len(q.arena):len(q.arena)]
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

// pop takes every queued message, and the arena they may point into. The caller
// writes them, then passes both to recycle.
func (q *sendQueue) pop() ([][]byte, []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs, arena := q.msgs, q.arena
	q.msgs, q.arena, q.spare, q.free = q.spare, q.free, nil, nil
	q.bytes = 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return msgs, arena
}

// recycle returns a popped batch for reuse; its messages must no longer be used.
func (q *sendQueue) recycle(msgs [][]byte, arena []byte) {
	clear(msgs)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spare == nil {
		q.spare = msgs[:0]
	}
	if q.free == nil && cap(arena) <= recycleMax {
		q.free = arena[:0]
	}
}

// close drops what is queued and makes later pushes fail with ErrNotConnected.
func (q *sendQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.msgs, q.arena, q.spare, q.free, q.bytes = nil, nil, nil, nil, 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}
