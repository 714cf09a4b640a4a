package actors

import "sync"

// Emitter is the one ordered path from the node to the application's event channel.
// Control events (connected, lost, listener) are always admitted, so an actor never
// blocks on a slow application; data events are admitted only while fewer than a bound
// are waiting, so a reader goroutine blocks instead and TCP flow control pushes back on
// the sender. Both share one FIFO, so a peer's PeerConnected comes before its messages
// and its PeerLost after them.
type Emitter struct {
	out chan Event

	mu      sync.Mutex
	queue   []Event
	spare   []Event
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

// Control queues a control event. It never blocks.
func (e *Emitter) Control(ev Event) {
	e.mu.Lock()
	if !e.closed && len(e.direct([]Event{ev})) > 0 {
		e.queue = append(e.queue, ev)
	}
	e.mu.Unlock()
	e.signal()
}

// direct hands events straight to the channel while nothing is queued ahead of them
// and the channel has room, saving the dispatcher's hop; it returns the events that
// did not fit. Called with mu held; it never blocks.
func (e *Emitter) direct(evs []Event) []Event {
	if e.busy || len(e.queue) > 0 {
		return evs
	}
	for i, ev := range evs {
		select {
		case e.out <- ev:
		default:
			return evs[i:]
		}
	}
	return nil
}

// Data queues data events, waiting while a bound (count or bytes) is reached; one
// batch may overshoot it. It returns false,
// dropping evs, if abort is closed or the Emitter is closed first.
func (e *Emitter) Data(evs []Event, abort <-chan struct{}) bool {
	for {
		e.mu.Lock()
		if e.closed || isClosed(abort) {
			// abort is checked under the lock: once the owner has closed it and then
			// queued a control event (PeerLost), no data can land behind that event.
			e.mu.Unlock()
			return false
		}
		if e.data < e.maxData && e.bytes < e.maxByte {
			if rest := e.direct(evs); len(rest) > 0 {
				e.queue = append(e.queue, rest...)
				e.data += len(rest)
				e.bytes += payloadBytes(rest)
				e.mu.Unlock()
				e.signal()
				return true
			}
			e.mu.Unlock()
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
			return false
		case <-e.done:
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
			batch := e.queue
			e.queue, e.spare = e.spare[:0], nil
			e.busy = len(batch) > 0
			e.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			delivered, deliveredBytes := 0, 0
			for _, ev := range batch {
				select {
				case e.out <- ev: // the common case, without a full select
				default:
					select {
					case e.out <- ev:
					case <-e.done:
						return
					}
				}
				if m, ok := ev.(Message); ok {
					delivered++
					deliveredBytes += len(m.Data)
				}
			}
			clear(batch)
			e.mu.Lock()
			e.spare = batch[:0]
			e.data -= delivered
			e.bytes -= deliveredBytes
			if e.space != nil && e.data < e.maxData && e.bytes < e.maxByte {
				close(e.space)
				e.space = nil
			}
			e.mu.Unlock()
		}
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

func payloadBytes(evs []Event) int {
	n := 0
	for _, ev := range evs {
		if m, ok := ev.(Message); ok {
			n += len(m.Data)
		}
	}
	return n
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
