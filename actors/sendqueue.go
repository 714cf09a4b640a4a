package actors

import (
	"cmp"
	"slices"
	"sync"

	"github.com/crust-p2p/crust/transport/wire"
)

// Small messages (up to arenaMax) are encoded as whole Data frames, back to back,
// into 64 KiB chunks, so the writer hands a run of them to the connection in one
// call without framing or copying each again; larger ones get an allocation of
// their own and are framed as they are written. Chunks come back through recycle
// once written and go to a pool shared by all peers, which the garbage collector
// trims, so an idle peer holds none.
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

// segment is a run of queued messages to write in one call: frames, whole encoded
// Data frames back to back in a chunk, or one large message not yet framed.
type segment struct {
	frames []byte
	large  []byte
}

// outgoing is what pop takes from the queue: segments in order, the chunks they
// point into, and how many messages and payload bytes they carry.
type outgoing struct {
	segs   []segment
	chunks []*chunk
	msgs   int
	bytes  int
	first  uint64 // the stream number of the first message (resume.go)
}

// sendQueue is a peer's bounded queue of outgoing messages. Many goroutines push (the
// application's Send); the live connection's writer pops everything at once, so a
// burst of small messages costs one lock and one write. It outlives a connection
// swap: the next connection's writer drains what the last one left.
//
// Send copies the message, so the caller may reuse its buffer; with chunks recycled,
// a steady stream of small messages costs no allocation.
type sendQueue struct {
	maxMsgs, maxBytes int

	mu     sync.Mutex
	out    outgoing
	spare  outgoing // emptied slices, from recycle
	open   bool     // the last segment is frames ending where the last chunk's free space starts
	closed bool
	popped uint64        // the stream number of the next message to pop
	space  chan struct{} // closed when pop frees room, if a blocking Send waits
	waker  func()        // called when the queue goes non-empty: the draining writer's kick
}

func newSendQueue(maxMsgs, maxBytes int) *sendQueue {
	return &sendQueue{maxMsgs: maxMsgs, maxBytes: maxBytes}
}

// setWaker sets what push calls when the queue goes non-empty.
func (q *sendQueue) setWaker(f func()) {
	q.mu.Lock()
	q.waker = f
	q.mu.Unlock()
}

// push copies msg into the queue. With block false a full queue is ErrQueueFull at
// once; with block true push waits for room until cancel is closed (ErrClosed) or the
// queue closes (ErrNotConnected). A message larger than maxBytes is admitted into an
// empty queue, so any message up to the frame limit can be sent.
func (q *sendQueue) push(msg []byte, block bool, cancel <-chan struct{}) error {
	var large []byte
	if len(msg) > arenaMax {
		large = append([]byte(nil), msg...) // copied outside the lock
	}
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrNotConnected
		}
		o := &q.out
		if o.msgs < q.maxMsgs && (o.bytes+len(msg) <= q.maxBytes || o.msgs == 0) {
			q.add(msg, large)
			var wake func()
			if o.msgs == 1 {
				wake = q.waker
			}
			q.mu.Unlock()
			if wake != nil {
				wake()
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

// add queues msg, or large if set (msg's copy). Called with mu held.
func (q *sendQueue) add(msg, large []byte) {
	o := &q.out
	if large != nil {
		o.segs = append(o.segs, segment{large: large})
		q.open = false
	} else {
		q.encode(msg)
	}
	o.msgs++
	o.bytes += len(msg)
}

// startAt numbers the queue's stream from base: a resumed stream goes on where the
// peer got to. Called before anything is queued.
func (q *sendQueue) startAt(base uint64) {
	q.mu.Lock()
	q.popped = base
	q.mu.Unlock()
}

// resend queues the held messages numbered base and on, in order, ahead of anything
// sent later and whatever the limits: the stream goes on from base. Those before base
// arrived and are dropped. It returns how many it queued and the ones that do not
// follow on from base (none, unless the peer's count is wrong), to be given back.
func (q *sendQueue) resend(held []heldMsg, base uint64) (resent int, left []heldMsg) {
	slices.SortFunc(held, byPos)
	i, _ := slices.BinarySearchFunc(held, base, func(m heldMsg, pos uint64) int { return cmp.Compare(m.pos, pos) })
	held = held[i:]
	defer func() { resent = len(held) - len(left) }()
	left = held
	q.mu.Lock()
	next := base + uint64(q.out.msgs)
	for len(left) > 0 && left[0].pos == next {
		var large []byte
		if len(left[0].data) > arenaMax {
			large = left[0].data
		}
		q.add(left[0].data, large)
		left, next = left[1:], next+1
	}
	q.mu.Unlock()
	return 0, left
}

// encode appends a small message's Data frame to the last chunk, starting a new
// chunk when it does not fit, and to the open segment, starting a new segment when
// none is open. Called with mu held.
func (q *sendQueue) encode(msg []byte) {
	o := &q.out
	size := wire.DataFrameSize(len(msg))
	n := len(o.chunks)
	if n == 0 || chunkSize-o.chunks[n-1].n < size {
		o.chunks = append(o.chunks, chunkPool.Get().(*chunk))
		n++
		q.open = false
	}
	c := o.chunks[n-1]
	start := c.n
	c.n += wire.PutData(c.buf[start:], msg)
	if q.open {
		last := &o.segs[len(o.segs)-1]
		last.frames = last.frames[:len(last.frames)+c.n-start]
		return
	}
	o.segs = append(o.segs, segment{frames: c.buf[start:c.n]})
	q.open = true
}

// pop takes everything queued. The caller writes it, then passes it to recycle.
func (q *sendQueue) pop() outgoing {
	q.mu.Lock()
	defer q.mu.Unlock()
	o := q.out
	o.first = q.popped
	q.popped += uint64(o.msgs)
	q.out, q.spare, q.open = q.spare, outgoing{}, false
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return o
}

// recycle returns a popped batch for reuse; its segments must no longer be used.
func (q *sendQueue) recycle(o outgoing) {
	clear(o.segs)
	for _, c := range o.chunks {
		c.n = 0
		chunkPool.Put(c)
	}
	clear(o.chunks)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spare.segs == nil {
		q.spare = outgoing{segs: o.segs[:0], chunks: o.chunks[:0]}
	}
}

// close makes later pushes fail with ErrNotConnected and returns what was queued.
func (q *sendQueue) close() outgoing {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	left := q.out
	left.first = q.popped
	q.out, q.spare, q.open = outgoing{}, outgoing{}, false
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return left
}
