package actors

import (
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

// connState is one connection of a peer: its reader goroutine, its writer (a
// goroutine only while there is something to write), what the Peer actor steers
// them with, and the actor's bookkeeping. Fields under "actor-owned" are touched only
// inside the Peer actor's Receive.
type connState struct {
	conn transport.Conn
	node *node
	pid  *actor.PID

	w          writer
	abort      chan struct{} // closed to stop reader and writer at once
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
	// peerAcks: the peer's Hello says it acknowledges Data, so the writer keeps what
	// it wrote (sent) until then and the reader acknowledges (acks) in turn.
	peerAcks bool
	acks     acker
	sent     sentLog
	// faulted is set (actor-owned) when the connection ended without the peer's
	// Goodbye, or with one that says it dropped our data (Goodbye.Dropped): what it
	// wrote and the peer did not acknowledge is reported.
	faulted bool
	// cutOff is set (actor-owned) when a new session cut the connection off: what it
	// reports is given back at once, apart from the new session's messages.
	cutOff bool
	// actStreams is the stream decision in the peer's Activate (larger side).
	actStreams *wire.Streams

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
	streams  *wire.Streams
}

func newConnState(n *node, pid *actor.PID, c transport.Conn) *connState {
	cs := &connState{
		conn:       c,
		node:       n,
		pid:        pid,
		abort:      make(chan struct{}),
		gate:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	cs.lastRead.Store(n.clock.Now().UnixNano())
	if h := c.PeerHello(); h != nil {
		cs.peerAcks = h.Acks
	}
	return cs
}

// start runs the reader; the writer starts when there is something to write.
func (cs *connState) start() {
	cs.node.wg.Add(1)
	go cs.readLoop()
}

func (cs *connState) openGate()  { cs.gateOnce.Do(func() { close(cs.gate) }) }
func (cs *connState) send(m any) { cs.node.engine.Send(cs.pid, m) }

// stopAll stops the reader and the writer.
func (cs *connState) stopAll() {
	cs.abortOnce.Do(func() { close(cs.abort) })
	cs.kick() // the writer closes writerDone
}

// pause holds the reader for d because the peer is over its inbound rate (TCP then
// slows the sender); false if the connection was aborted meanwhile.
func (cs *connState) pause(d time.Duration) bool {
	cs.node.refused.refuse(cs.node.log, cs.node.clock.Now(), RefusedPeerRate, "peer", cs.conn.PeerID().Short(), "pause", d)
	cs.stalled.Store(true) // the silence is ours: no peer timeout
	defer cs.stalled.Store(false)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-cs.abort:
		return false
	}
}

// readLoop reads frames until the peer's Goodbye or an error. Data goes to the Emitter
// in batches, once the gate is open; everything else goes to the Peer actor.
func (cs *connState) readLoop() {
	defer cs.node.wg.Done()
	from := cs.conn.PeerID()
	var batch *msgBatch // nil while empty: an idle reader holds none
	handler := cs.node.cfg.OnMessage
	gateOpen := false
	// waitGate waits until the reader may deliver; false once the reader is aborted,
	// which it checks every time: a connection cut off (a new session, a gap behind
	// it) must not hand the application what is still in its buffers.
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
		return !isClosed(cs.abort)
	}
	inHandler := false            // stalled is set for a run of handler calls, cleared at flush
	handled, handledBytes := 0, 0 // handler calls not yet counted in traffic
	flush := func() bool {
		cs.lastRead.Store(cs.node.clock.Now().UnixNano())
		if inHandler {
			cs.stalled.Store(false)
			inHandler = false
			cs.delivered(handled, handledBytes)
			cs.traffic.Load().received(handled, handledBytes)
			handled, handledBytes = 0, 0
		}
		if batch == nil {
			return true
		}
		if !waitGate() {
			return false
		}
		if cs.discard.Load() {
			batch.free()
			batch = nil
			return true
		}
		cs.traffic.Load().received(batch.len(), batch.bytes)
		cs.stalled.Store(true)
		count, size := batch.len(), batch.bytes
		ok := cs.node.emit.Data(batch, cs.abort)
		if ok {
			cs.delivered(count, size)
		}
		batch = nil
		cs.lastRead.Store(cs.node.clock.Now().UnixNano())
		cs.stalled.Store(false)
		return ok
	}
	aborted := false
	var limit *peerLimit // made at the first message: an idle connection holds none
	// A run is charged to limit when it ends, so it ends within the bucket's burst.
	runMax := maxRun(cs.node.cfg.Limits, readBatch)
	runLen, runBytes := 0, 0 // messages and payload bytes of the current run
	// deliver takes one message: into the batch for Events, or to the handler, which
	// is done with d when it returns (so d is lent). false ends the run: the batch is
	// full, or the reader is aborted.
	deliver := func(d []byte) bool {
		runLen++
		runBytes += len(d)
		if handler == nil {
			if batch == nil {
				batch = newBatch()
			}
			batch.add(Message{From: from, Data: d})
			return runLen < runMax && batch.len() < readBatch && batch.bytes < readBatchBytes
		}
		if !waitGate() {
			aborted = true
			return false
		}
		if cs.discard.Load() {
			return true
		}
		if !inHandler {
			cs.stalled.Store(true)
			inHandler = true
		}
		handled++
		handledBytes += len(d)
		handler(Message{From: from, Data: d})
		return runLen < runMax
	}
	for {
		f, n, err := cs.conn.ReadRun(handler != nil, deliver)
		if aborted {
			flush() // counts what the handler had (the batch is nil in handler mode)
			cs.send(readerEnded{cs: cs, err: errAborted})
			return
		}
		if n > 0 {
			size := runBytes
			runLen, runBytes = 0, 0
			if limit == nil {
				l := newPeerLimit(cs.node.cfg.Limits)
				limit = &l
			}
			if d := limit.take(cs.node.clock.Now(), n, size); d > 0 && (!flush() || !cs.pause(d)) {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
		}
		if err == nil && f.Msg == nil && n > 0 { // a run of data, delivered
			if (batch != nil || cs.conn.Buffered() == 0) && !flush() {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
			continue
		}
		if err != nil {
			flush()
			cs.send(readerEnded{cs: cs, err: err})
			return
		}
		switch m := f.Msg.(type) {
		case wire.Ping:
			cs.control(wire.Pong(m))
		case wire.Ack:
			cs.sent.ack(m.Count)
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
		if batch != nil && (batch.len() >= readBatch || batch.bytes >= readBatchBytes) || cs.conn.Buffered() == 0 {
			if !flush() {
				cs.send(readerEnded{cs: cs, err: errAborted})
				return
			}
		}
	}
}
