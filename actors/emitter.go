package actors

import "sync"

// Emitter is the one ordered path from the node to the application's event channel.
// Control events (connected, lost, listener) are always admitted, so an actor never
// blocks on a slow application; data events are admitted only while fewer than a bound
// are waiting, so a reader goroutine blocks instead and TCP flow control pushes back on
// the sender. Both share one FIFO, so a peer's PeerConnected comes before its messages
// and its PeerLost after them.
//
// Messages come in batches, which the dispatcher goroutine turns into events: the
// reader that hands a batch over goes back to reading while another core does the
// per-message channel sends. Only a short batch into an idle Emitter is sent straight
// away, which saves the dispatcher's wake-up when messages come one at a time.
type Emitter struct {
	out chan Event

	mu      sync.Mutex
	queue   []queued
	spare   []queued
	data    int           // data events queued or being delivered
	maxData int           // bound on data
	bytes   int           // payload bytes of the data events queued
	maxByte int           // bound on bytes
	space   chan struct{} // closed when data drops below maxData, if someone waits
	busy    bool          // the dispatcher holds a batch it has not finished delivering
	wake    chan struct{} // cap 1: the dispatcher has work
	done    chan struct{} // closed by Close
	exited  chan struct{} // closed when the dispatcher returns
	closed  bool
}

// queued is one item of the Emitter's FIFO: a control event, or a batch of messages.
type queued struct {
	ev    Event
	batch *msgBatch
}

// msgBatch is a reader's run of messages for Emitter.Data, from newBatch.
type msgBatch struct {
	msgs  []Message
	bytes int
}

// batchPool holds empty batches; readers hand over at most readBatch messages.
var batchPool = sync.Pool{New: func() any { return &msgBatch{msgs: make([]Message, 0, readBatch)} }}

// newBatch returns an empty batch, reused from earlier ones where possible.
func newBatch() *msgBatch { return batchPool.Get().(*msgBatch) }

// add appends a message.
func (b *msgBatch) add(m Message) {
	b.msgs = append(b.msgs, m)
	b.bytes += len(m.Data)
}

// len is the number of messages.
func (b *msgBatch) len() int { return len(b.msgs) }

// free empties b and returns it to the pool.
func (b *msgBatch) free() {
	clear(b.msgs)
	b.msgs, b.bytes = b.msgs[:0], 0
	batchPool.Put(b)
}

// directMax is the longest batch that Data sends on the channel itself.
const directMax = 4

// NewEmitter returns an Emitter whose channel has capacity buffer and which holds at
// most maxData data events, and about maxBytes of their payload, beyond it. Call Run
// in a goroutine.
func NewEmitter(buffer, maxData, maxBytes int) *Emitter {
	return &Emitter{
		out:     make(chan Event, buffer),
		maxData: maxData,
		maxByte: maxBytes,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
}

// Events is the application's channel. It is closed after Close.
func (e *Emitter) Events() <-chan Event { return e.out }

// idle reports whether nothing is queued or being delivered, so an event may go
// straight to the channel without overtaking one. Called with mu held.
func (e *Emitter) idle() bool { return !e.busy && len(e.queue) == 0 }

// Control queues a control event. It never blocks.
func (e *Emitter) Control(ev Event) {
	e.mu.Lock()
	if !e.closed && !(e.idle() && e.trySend(ev)) {
		e.queue = append(e.queue, queued{ev: ev})
	}
	e.mu.Unlock()
	e.signal()
}

// trySend hands ev to the channel if it has room.
func (e *Emitter) trySend(ev Event) bool {
	select {
	case e.out <- ev:
		return true
	default:
		return false
	}
}

// Data queues a batch of messages, waiting while a bound (count or bytes) is reached;
// one batch may overshoot it. It takes b: the caller gets a new one from newBatch. It
// returns false, dropping b, if abort is closed or the Emitter is closed first.
func (e *Emitter) Data(b *msgBatch, abort <-chan struct{}) bool {
	for {
		e.mu.Lock()
		if e.closed || isClosed(abort) {
			// abort is checked under the lock: once the owner has closed it and then
			// queued a control event (PeerLost), no data can land behind that event.
			e.mu.Unlock()
			b.free()
			return false
		}
		if e.data < e.maxData && e.bytes < e.maxByte {
			if e.idle() && b.len() <= directMax {
				sent := 0
				for _, m := range b.msgs {
					if !e.trySend(m) {
						break
					}
					sent++
				}
				if sent == b.len() {
					e.mu.Unlock()
					b.free()
					return true
				}
				rest := newBatch()
				for _, m := range b.msgs[sent:] {
					rest.add(m)
				}
				b.free()
				b = rest
			}
			e.queue = append(e.queue, queued{batch: b})
			e.data += b.len()
			e.bytes += b.bytes
			e.mu.Unlock()
			e.signal()
			return true
		}
		if e.space == nil {
			e.space = make(chan struct{})
		}
		space := e.space
		e.mu.Unlock()
		select {
		case <-space:
		case <-abort:
			b.free()
			return false
		case <-e.done:
			b.free()
			return false
		}
	}
}

func (e *Emitter) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run delivers events until Close, then closes the channel.
func (e *Emitter) Run() {
	defer close(e.exited)
	defer close(e.out)
	for {
		select {
		case <-e.wake:
		case <-e.done:
			return
		}
		for {
			e.mu.Lock()
			items := e.queue
			e.queue, e.spare = e.spare[:0], nil
			e.busy = len(items) > 0
			e.mu.Unlock()
			if len(items) == 0 {
				break
			}
			for i, it := range items {
				if it.batch == nil {
					if !e.deliver(it.ev) {
						return
					}
					continue
				}
				for _, m := range it.batch.msgs {
					if !e.deliver(m) {
						return
					}
				}
				n, size := it.batch.len(), it.batch.bytes
				it.batch.free()
				items[i].batch = nil
				e.mu.Lock()
				e.data -= n
				e.bytes -= size
				if e.space != nil && e.data < e.maxData && e.bytes < e.maxByte {
					close(e.space)
					e.space = nil
				}
				e.mu.Unlock()
			}
			clear(items)
			e.mu.Lock()
			e.spare = items[:0]
			e.mu.Unlock()
		}
	}
}

// deliver sends ev on the channel, waiting for room; false if the Emitter closed.
func (e *Emitter) deliver(ev Event) bool {
	select {
	case e.out <- ev: // the common case, without a full select
		return true
	default:
	}
	select {
	case e.out <- ev:
		return true
	case <-e.done:
		return false
	}
}

// Close stops delivery; events not yet delivered are dropped. It waits for Run to
// return. Safe to call more than once.
func (e *Emitter) Close() {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
	e.mu.Unlock()
	<-e.exited
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
