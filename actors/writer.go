package actors

import (
	"errors"
	"slices"
	"sync"

	"github.com/crust-p2p/crust/transport/wire"
)

// maxControl bounds the control frames waiting for the writer; more are dropped
// (pings are retried, and a connection that cannot take a pong is about to time out
// anyway), except an Ack, which replaces the one queued or goes past the bound.
const maxControl = 16

// writer is a connection's write side. No goroutine waits for work: kick starts one
// when something is to be written (a control frame, the Activate, queued data, the
// Goodbye, an abort), and it returns once everything is written and flushed. An idle
// connection then costs one goroutine, its reader, instead of two.
type writer struct {
	mu      sync.Mutex
	running bool           // a writer goroutine runs
	kicked  bool           // work came in since the running goroutine last looked
	over    bool           // the writer stopped for good (Goodbye, error, abort)
	ctrl    []wire.Message // control frames to write
	enable  *enableData    // the Activate decision, not yet taken up
	bye     *wire.Goodbye  // to write last

	// Owned by the running goroutine (one at a time; mu orders them).
	pending *enableData // enabled, waiting for the previous writer to be done
	q       *sendQueue  // the peer's queue, once this connection drains it
	t       *traffic
}

// kick makes sure a writer goroutine looks at the work: it starts one unless one runs
// (which then looks again before it returns) or the writer is over.
func (cs *connState) kick() {
	w := &cs.w
	w.mu.Lock()
	if w.over {
		w.mu.Unlock()
		return
	}
	w.kicked = true
	if w.running {
		w.mu.Unlock()
		return
	}
	w.running = true
	w.mu.Unlock()
	cs.node.wg.Add(1)
	go cs.writeLoop()
}

// control queues a control frame without blocking; a full queue drops it.
func (cs *connState) control(m wire.Message) {
	w := &cs.w
	w.mu.Lock()
	full := len(w.ctrl) >= maxControl
	if _, ack := m.(wire.Ack); ack {
		// Counts are cumulative: a newer Ack replaces a queued one, and one is never
		// dropped for room (the peer keeps what we do not acknowledge).
		full = false
		if i := slices.IndexFunc(w.ctrl, func(q wire.Message) bool { _, ok := q.(wire.Ack); return ok }); i >= 0 {
			w.ctrl[i] = m
			w.mu.Unlock()
			return // the writer is due to write it anyway
		}
	}
	if !full {
		w.ctrl = append(w.ctrl, m)
	}
	w.mu.Unlock()
	if !full {
		cs.kick()
	}
}

// enableWith lets the connection drain the peer's queue (see enableData); once per
// connection.
func (cs *connState) enableWith(en enableData) {
	cs.w.mu.Lock()
	cs.w.enable = &en
	cs.w.mu.Unlock()
	cs.kick()
}

// goodbye has the writer end with g; what is queued then stays for the next
// connection.
func (cs *connState) goodbye(g wire.Goodbye) {
	cs.w.mu.Lock()
	cs.w.bye = &g
	cs.w.mu.Unlock()
	cs.kick()
}

// byePending reports whether a Goodbye waits: draining the queue stops for it.
func (cs *connState) byePending() bool {
	cs.w.mu.Lock()
	defer cs.w.mu.Unlock()
	return cs.w.bye != nil
}

// errIdle ends a writer goroutine that has written everything.
var errIdle = errors.New("nothing to write")

// writeLoop runs write until it is idle or the writer is over: then writerDone is
// closed and, unless aborted, the Peer actor told.
func (cs *connState) writeLoop() {
	defer cs.node.wg.Done()
	err := cs.write()
	if err == errIdle {
		return
	}
	cs.w.mu.Lock()
	cs.w.over, cs.w.running, cs.w.ctrl = true, false, nil
	cs.w.mu.Unlock()
	close(cs.writerDone)
	cs.send(writerEnded{cs: cs, err: err})
}

// write writes control frames at once and, once enabled, the peer's queued data,
// flushing after each burst, until nothing is left (errIdle). It returns nil after
// writing the Goodbye, or the error that stopped it.
func (cs *connState) write() error {
	w := &cs.w
	for {
		w.mu.Lock()
		w.kicked = false
		ctrl, en, bye := w.ctrl, w.enable, w.bye
		w.ctrl, w.enable = nil, nil
		w.mu.Unlock()
		if isClosed(cs.abort) {
			return errAborted
		}
		for _, m := range ctrl {
			if err := cs.conn.Write(m); err != nil {
				return err
			}
		}
		if en != nil {
			// Activate goes out at once; data waits for the previous writer. An
			// Activate decided before a Goodbye still goes first, so the peer learns
			// its Seq (a later Activate may name it as coming before).
			w.pending = en
			if en.activate {
				if err := cs.conn.Write(wire.Activate{Seq: en.seq, After: en.prev, Streams: en.streams}); err != nil {
					return err
				}
			}
			if !isClosed(en.after) {
				cs.kickAfter(en.after)
			}
		}
		if bye != nil {
			if err := cs.conn.Write(*bye); err != nil {
				return err
			}
			return cs.conn.Flush()
		}
		if p := w.pending; p != nil && isClosed(p.after) {
			w.q, w.t, w.pending = p.queue, p.traffic, nil
			w.q.setWaker(cs.kick)
		}
		if w.q != nil {
			if err := cs.writeQueued(w.q, w.t); err != nil {
				return err
			}
		}
		if err := cs.conn.Flush(); err != nil {
			return err
		}
		w.mu.Lock()
		if !w.kicked {
			w.running = false
			w.mu.Unlock()
			return errIdle
		}
		w.mu.Unlock()
	}
}

// kickAfter kicks the writer once after is closed (the previous connection's writer
// is through), or the connection is aborted.
func (cs *connState) kickAfter(after <-chan struct{}) {
	cs.node.wg.Add(1)
	go func() {
		defer cs.node.wg.Done()
		select {
		case <-after:
			cs.kick()
		case <-cs.abort:
		}
	}()
}

// writeQueued writes everything in the queue, repeatedly, until it is empty or a
// Goodbye or abort is pending.
func (cs *connState) writeQueued(q *sendQueue, t *traffic) error {
	for !cs.byePending() {
		if limit := cs.node.cfg.SendQueueBytes; cs.peerAcks && cs.sent.full(limit) {
			// What is buffered goes out first: the peer can only acknowledge what it
			// gets.
			if err := cs.conn.Flush(); err != nil {
				return err
			}
			if !cs.sent.waitRoom(limit, cs.abort) {
				return errAborted
			}
		}
		o := q.pop()
		if o.msgs == 0 {
			q.recycle(o)
			return nil
		}
		if cs.peerAcks {
			// Kept before it is written: the peer's Ack for it can come back before
			// the write call returns.
			cs.sent.keep(o)
		}
		for _, seg := range o.segs {
			var err error
			if seg.frames != nil {
				err = cs.conn.WriteFrames(seg.frames)
			} else {
				err = cs.conn.WriteData(seg.large)
			}
			if err != nil {
				return err // o, if kept, is reported with the rest
			}
		}
		t.sent(o.msgs, o.bytes)
		if !cs.peerAcks {
			q.recycle(o)
		}
		if isClosed(cs.abort) {
			return errAborted
		}
	}
	return nil
}
