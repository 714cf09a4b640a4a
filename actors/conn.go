package actors

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/wire"
)

// Batch limits of the reader: how many messages, and about how many payload bytes, it
// hands to the Emitter at once.
const (
	readBatch      = 256
	readBatchBytes = 1 << 20
)

// connState is one connection of a peer: its reader and writer goroutines, the
// channels the Peer actor steers them with, and the actor's bookkeeping. Fields under
// "actor-owned" are touched only inside the Peer actor's Receive.
type connState struct {
	conn transport.Conn
	node *node
	pid  *actor.PID

	ctrl       chan wire.Message // pings, pongs; dropped when full
	enable     chan enableData   // cap 1: start draining the peer's send queue
	bye        chan wire.Goodbye // cap 1: write this last, then stop
	abort      chan struct{}     // closed to stop both goroutines at once
	abortOnce  sync.Once
	gate       chan struct{} // closed when the reader may deliver data
	gateOnce   sync.Once
	writerDone chan struct{} // closed when the writer has stopped
	lastRead   atomic.Int64  // clock time (UnixNano) of the last frame read
	// stalled is set while the reader waits on the application (events not read, a
	// slow OnMessage) or on an older connection to drain: the silence is ours, not
	// the peer's, so no timeout applies.
	stalled atomic.Bool
	// discard is set, with the gate opened, on a connection we said Goodbye to before
	// it ever carried data: whatever data still comes is dropped, so the reader can
	// reach the peer's Goodbye.
	discard atomic.Bool
	// traffic counts what the reader hands on, once the connection is live.
	traffic atomic.Pointer[traffic]

	kind  string       // the ladder step that made it, e.g. "tcp-direct"
	tried []StepResult // steps that failed before it

	// actor-owned
	sentBye     bool
	byeAt       time.Time
	gotBye      bool
	readerOver  bool
	writerOver  bool
	closed      bool
	wasActive   bool
	activeSeq   uint64    // the Activate Seq that made it live: order among the pair's connections
	afterSeq    uint64    // the connection whose data comes before this one's (0: none)
	activatedAt time.Time // when it went live
	awaitingAct time.Time // larger side: when it started waiting for Activate
	closeReason string    // why we closed it, if we did
	pingSeq     uint64
	pingAt      time.Time
}

// enableData lets the writer drain queue once after is closed (the previous
// connection's writer is through), writing Activate first when activate is set.
type enableData struct {
	queue    *sendQueue
	traffic  *traffic // counts what is written
	after    <-chan struct{}
	activate bool
	seq      uint64 // of the Activate
	prev     uint64 // the Activate's After
}

func newConnState(n *node, pid *actor.PID, c transport.Conn) *connState {
	cs := &connState{
		conn:       c,
		node:       n,
		pid:        pid,
		ctrl:       make(chan wire.Message, 16),
		enable:     make(chan enableData, 1),
		bye:        make(chan wire.Goodbye, 1),
		abort:      make(chan struct{}),
		gate:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	cs.lastRead.Store(n.clock.Now().UnixNano())
	return cs
}

// start runs the reader and writer.
func (cs *connState) start() {
	cs.node.wg.Add(2)
	go cs.readLoop()
	go cs.writeLoop()
}

func (cs *connState) openGate()  { cs.gateOnce.Do(func() { close(cs.gate) }) }
func (cs *connState) stopAll()   { cs.abortOnce.Do(func() { close(cs.abort) }) }
func (cs *connState) send(m any) { cs.node.engine.Send(cs.pid, m) }

// control queues a control frame without blocking; a full queue drops it (pings are
// retried, and a connection that cannot take a pong is about to time out anyway).
func (cs *connState) control(m wire.Message) {
	select {
	case cs.ctrl <- m:
	default:
	}
}

// readLoop reads frames until the peer's Goodbye or an error. Data goes to the Emitter
// in batches, once the gate is open; everything else goes to the Peer actor.
func (cs *connState) readLoop() {
	defer cs.node.wg.Done()
	from := cs.conn.PeerID()
	batch := newBatch()
	handler := cs.node.cfg.OnMessage
	gateOpen := false
	waitGate := func() bool {
		if !gateOpen {
			cs.stalled.Store(true)
			defer cs.stalled.Store(false)
			select {
			case <-cs.gate:
				gateOpen = true
			case <-cs.abort:
				return false
			}
		}
		return true
	}
	inHandler := false            // stalled is set for a run of handler calls, cleared at flush
	handled, handledBytes := 0, 0 // handler calls not yet counted in traffic
	flush := func() bool {
		cs.lastRead.Store(cs.node.clock.Now().UnixNano())
		if inHandler {
			cs.stalled.Store(false)
			inHandler = false
			cs.traffic.Load().received(handled, handledBytes)
			handled, handledBytes = 0, 0
		}
		if batch.len() == 0 {
			return true
		}
		if !waitGate() {
			return false
		}
		if cs.discard.Load() {
			batch.free()
			batch = newBatch()
			return true
		}
		cs.traffic.Load().received(batch.len(), batch.bytes)
		cs.stalled.Store(true)
		ok := cs.node.emit.Data(batch, cs.abort)
		batch = newBatch()
		cs.lastRead.Store(cs.node.clock.Now().UnixNano())
		cs.stalled.Store(false)
		return ok
	}
	read := cs.conn.ReadFrame
	if handler != nil {
		read = cs.conn.ReadFrameLent // the handler is done with each payload at return
	}
	for {
		f, err := read()
		if err != nil {
			flush()
			cs.send(readerEnded{cs: cs, err: err})
			return
		}
		switch m := f.Msg.(type) {
		case nil:
			if handler == nil {
				batch.add(Message{From: from, Data: f.Data})
				break
			}
			if !waitGate() {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
			if cs.discard.Load() {
				break
			}
			if !inHandler {
				cs.stalled.Store(true)
				inHandler = true
			}
			handled++
			handledBytes += len(f.Data)
			handler(Message{From: from, Data: f.Data})
		case wire.Ping:
			cs.control(wire.Pong(m))
		case wire.Goodbye:
			flush()
			cs.send(readerEnded{cs: cs, bye: &m})
			return
		case wire.Pong, wire.Activate:
			if !flush() {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
			cs.send(connControl{cs: cs, msg: m})
		case wire.Relay:
			if pid := cs.node.rendezvousPID.Load(); pid != nil {
				cs.node.engine.Send(pid, relayIn{via: from, msg: m})
			}
		case wire.Unknown:
			cs.node.log.Debug("skipping unknown message type", "peer", from.Short(), "type", m.Tag)
		default:
			flush()
			cs.send(readerEnded{cs: cs, err: errProtocol(m)})
			return
		}
		if batch.len() >= readBatch || batch.bytes >= readBatchBytes || cs.conn.Buffered() == 0 {
			if !flush() {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
		}
	}
}

// writeLoop writes control frames at once and, once enabled, the peer's queued data,
// flushing after each burst. It stops after writing a Goodbye, on abort, or on error.
func (cs *connState) writeLoop() {
	defer cs.node.wg.Done()
	defer close(cs.writerDone)
	err := cs.write()
	if errors.Is(err, errAborted) {
		return
	}
	cs.send(writerEnded{cs: cs, err: err})
}

func (cs *connState) write() error {
	var (
		pending *sendQueue      // enabled, waiting for the previous writer
		counts  *traffic        // pending's counters
		after   <-chan struct{} // closed when the previous writer is done; nil: not waiting
		q       *sendQueue
		t       *traffic
		ready   chan struct{} // nil until enabled: a nil channel never fires
	)
	enable := func(en enableData) error {
		pending, counts, after = en.queue, en.traffic, en.after
		if en.activate {
			return cs.conn.Write(wire.Activate{Seq: en.seq, After: en.prev})
		}
		return nil
	}
	for {
		select {
		case m := <-cs.ctrl:
			if err := cs.conn.Write(m); err != nil {
				return err
			}
		case en := <-cs.enable:
			// Activate goes out at once; data waits for the previous writer.
			if err := enable(en); err != nil {
				return err
			}
		case <-after:
			q, t, ready, after = pending, counts, pending.ready, nil
		case <-ready:
		case g := <-cs.bye:
			// An Activate decided before this Goodbye still goes first, so the peer
			// learns its Seq (a later Activate may name it as coming before).
			select {
			case en := <-cs.enable:
				if err := enable(en); err != nil {
					return err
				}
			default:
			}
			// What is queued now stays for the next connection. Goodbye is the last
			// frame.
			if err := cs.conn.Write(g); err != nil {
				return err
			}
			return cs.conn.Flush()
		case <-cs.abort:
			return errAborted
		}
		if ready != nil {
			if err := cs.writeQueued(q, t); err != nil {
				return err
			}
		}
		if err := cs.conn.Flush(); err != nil {
			return err
		}
	}
}

// writeQueued writes everything in the queue, repeatedly, until it is empty or a
// Goodbye or abort is pending.
func (cs *connState) writeQueued(q *sendQueue, t *traffic) error {
	for len(cs.bye) == 0 {
		o := q.pop()
		if o.msgs == 0 {
			q.recycle(o)
			return nil
		}
		for _, seg := range o.segs {
			var err error
			if seg.frames != nil {
				err = cs.conn.WriteFrames(seg.frames)
			} else {
				err = cs.conn.WriteData(seg.large)
			}
			if err != nil {
				return err
			}
		}
		t.sent(o.msgs, o.bytes)
		q.recycle(o)
		select {
		case <-cs.abort:
			return errAborted
		default:
		}
	}
	return nil
}
