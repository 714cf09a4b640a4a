package actors

import (
	"sync"
)

// sendQueue is a peer's bounded queue of outgoing messages. Many goroutines push (the
// application's Send); the live connection's writer pops everything at once, so a
// burst of small messages costs one lock and one flush. It outlives a connection
// swap: the next connection's writer drains what the last one left.
type sendQueue struct {
	maxMsgs, maxBytes int

	mu     sync.Mutex
	msgs   [][]byte
	spare  [][]byte
	bytes  int
	closed bool
	space  chan struct{} // closed when pop frees room, if a blocking Send waits

	ready chan struct{} // cap 1: the queue went non-empty
}

func newSendQueue(maxMsgs, maxBytes int) *sendQueue {
	return &sendQueue{maxMsgs: maxMsgs, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push queues msg. With block false a full queue is ErrQueueFull at once; with block
// true push waits for room until cancel is closed (ErrClosed) or the queue closes
// (ErrNotConnected). A message larger than maxBytes is admitted into an empty queue, so
// any message up to the frame limit can be sent.
func (q *sendQueue) push(msg []byte, block bool, cancel <-chan struct{}) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrNotConnected
		}
		if len(q.msgs) < q.maxMsgs && (q.bytes+len(msg) <= q.maxBytes || len(q.msgs) == 0) {
			q.msgs = append(q.msgs, msg)
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

// pop takes every queued message. The returned slice is valid until the next pop.
func (q *sendQueue) pop() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs, q.spare = q.spare[:0], out
	q.bytes = 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return out
}

// close drops what is queued and makes later pushes fail with ErrNotConnected.
func (q *sendQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.msgs, q.spare, q.bytes = nil, nil, 0
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

// len returns the number of queued messages and bytes.
func (q *sendQueue) len() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs), q.bytes
}
