package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// closedChan is an always-ready channel: "nothing to wait for".
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// peer is the actor for one remote node. It owns every connection to that node and
// keeps exactly one of them live:
//
//   - The node with the smaller NodeID decides. It keeps the connection it initiated
//     if it has one, else the first that completes, and sends Activate{Seq} on it,
//     Seq growing with each decision. Every other connection gets Goodbye{duplicate}.
//   - The node with the larger NodeID sends data only on a connection it received
//     Activate on, and follows the highest Seq: Activates on different connections
//     can overtake each other.
//   - On a swap the old writer flushes, writes Goodbye and stops before the new one
//     starts. Each side delivers a connection's data only once every connection
//     activated before it (by Seq) has been read to its Goodbye, so messages stay in
//     order and none is lost across the swap.
//
// The application sees PeerConnected when the first connection goes live and PeerLost
// when the live one ends with no replacement on the way, after its last message;
// swaps are invisible. A peer actor with nothing left to do retires: the Supervisor
// forgets it, so the memory kept per NodeID ever seen stays bounded.
type peer struct {
	n       *node
	id      identity.NodeID
	smaller bool // we have the smaller NodeID: we decide which connection is live
	pid     *actor.PID
	parent  *actor.PID

	conns          map[*connState]struct{}
	active         *connState      // the live connection, or nil
	lastWriterDone <-chan struct{} // closed when the last connection that drained the queue stopped writing
	lastWriterSeq  uint64          // smaller side: that connection's Seq, the next Activate's After
	drained        map[uint64]bool // larger side: Seqs of live-once connections read to their end

	connected bool       // the application saw PeerConnected and no PeerLost since
	lostWhy   string     // non-empty: lost; PeerLost waits for older connections to drain
	queue     *sendQueue // while connected
	traffic   *traffic   // the session's counters, while connected
	link      *link      // our entry in the Directory, while connected
	info      PeerInfo
	expecting time.Time // larger side: the peer said another connection is live; its Activate is due
	actSeq    uint64    // larger side: Seq of the newest Activate followed

	contact    transport.Contact // where to dial: the latest Connect's
	dialing    bool
	dialCancel context.CancelFunc
	dialGen    int
	lastErr    error
	waiters    []chan<- error
	// climbed is the connection our last dial made, until a connection goes live, and
	// climbTook how long its winning ladder step ran: PeerConnected.Took.
	climbed   *connState
	climbTook time.Duration

	// redialUntil, while set, is when reconnecting to a peer lost without a Goodbye
	// stops (redial.go); redialWait is the wait before the attempt after next.
	redialUntil time.Time
	redialWait  time.Duration
	redialTimer *time.Timer
	redialGen   int

	// streams is both streams of the session, for a resume after a fault, and its
	// messages that may not have arrived (resume.go): the unacknowledged ones of
	// failed connections as they are through, and what was still queued. They come
	// back in the Undelivered before the session's PeerLost, unless held for a resume.
	streams streams

	leaving      string        // non-empty: we said Goodbye to all; the reason
	shutdownDone chan struct{} // closed when leaving for shutdown is through
	ticker       *repeater
	retired      bool // told the Supervisor we are idle; everything now goes back to it
}

func newPeer(n *node, id identity.NodeID) actor.Producer {
	return func() actor.Receiver {
		return &peer{n: n, id: id, smaller: n.self.Less(id), conns: make(map[*connState]struct{}), lastWriterDone: closedChan}
	}
}

func (p *peer) Receive(c *actor.Context) {
	switch c.Message().(type) {
	case actor.Started:
		p.pid, p.parent = c.PID(), c.Parent()
		return
	case actor.Initialized:
		return
	case actor.Stopped:
		p.stop()
		return
	}
	if p.retired {
		p.forward(c)
		return
	}
	switch msg := c.Message().(type) {
	case ConnectPeer:
		p.connect(c, msg)
	case DisconnectPeer:
		msg.Result <- p.disconnect()
	case peerShutdown:
		p.shutdown(msg.done)
	case InboundConn:
		p.adopt(c, msg.Conn, p.n.inboundKind(msg.Conn), nil, 0)
	case punchedConn:
		p.adopt(c, msg.conn, msg.kind, nil, 0)
	case relayOut:
		if cs := p.active; cs != nil && !cs.sentBye && !cs.closed {
			cs.control(msg.msg)
		}
	case dialResult:
		p.dialed(c, msg)
	case connControl:
		if p.known(msg.cs) {
			p.control(msg)
		}
	case readerEnded:
		if p.known(msg.cs) {
			p.readerEnded(msg)
		}
	case writerEnded:
		if p.known(msg.cs) {
			p.writerEnded(msg)
		}
	case keepaliveTick:
		p.tick()
	case redialTick:
		p.redial(msg, func() { p.startDial(c) })
	case countConns:
		n := len(p.conns)
		if p.dialing {
			n++
		}
		msg.result <- n
	default:
		p.n.log.Warn("peer actor: unexpected message", "peer", p.id.Short(), "type", fmt.Sprintf("%T", msg))
	}
	p.settle(c)
}

// known reports whether cs is still one of ours: a connection already closed and
// forgotten may still have reports on the way, which no longer matter.
func (p *peer) known(cs *connState) bool {
	_, ok := p.conns[cs]
	return ok
}

// forward hands work that reached a retired actor back to the Supervisor, which
// routes it to a fresh actor once it has processed our retirement.
func (p *peer) forward(c *actor.Context) {
	switch msg := c.Message().(type) {
	case ConnectPeer, InboundConn, punchedConn:
		c.Send(p.parent, msg)
	case DisconnectPeer:
		msg.Result <- ErrNotConnected
	case countConns:
		msg.result <- 0
	case peerShutdown:
		close(msg.done)
	}
}

func (p *peer) connect(c *actor.Context, msg ConnectPeer) {
	switch {
	case p.leaving != "":
		msg.Result <- fmt.Errorf("connecting to %s: a disconnect is still in progress; retry after PeerLost", p.id.Short())
		return
	case p.connected && p.lostWhy == "":
		msg.Result <- nil
		return
	}
	p.contact = msg.Contact
	p.waiters = append(p.waiters, msg.Result)
	if !p.dialing {
		p.startDial(c)
	}
}

func (p *peer) disconnect() error {
	if !p.connected && len(p.conns) == 0 && !p.dialing {
		return ErrNotConnected
	}
	p.leave("disconnected locally", wire.ReasonDisconnect)
	return nil
}

func (p *peer) shutdown(done chan struct{}) {
	p.shutdownDone = done
	p.leave("shut down", wire.ReasonShutdown)
}

// leave says Goodbye on every connection and stops dialling. Sends fail from now on
// (what is still queued is dropped); PeerLost follows when the connections are through.
func (p *peer) leave(why, reason string) {
	p.leaving = why
	p.stopRedial()
	p.closeQueue()
	if p.dialCancel != nil {
		p.dialCancel()
		// Whatever that dial still brings is stale: dropped when it arrives.
		p.dialing, p.dialCancel = false, nil
		p.dialGen++
	}
	for cs := range p.conns {
		p.sayBye(cs, reason)
	}
	p.fail(fmt.Errorf("connecting to %s: %s", p.id.Short(), why))
}

// stop runs when the actor is stopped: whatever is left is closed without ceremony.
func (p *peer) stop() {
	p.stopRedial()
	if p.ticker != nil {
		p.ticker.Stop()
		p.ticker = nil
	}
	if p.dialCancel != nil {
		p.dialCancel()
	}
	for cs := range p.conns {
		p.closeConn(cs, "node stopped")
	}
	p.closeQueue()
	p.giveBackAtStop()
	p.fail(ErrClosed)
	if p.shutdownDone != nil {
		close(p.shutdownDone)
		p.shutdownDone = nil
	}
}

func (p *peer) startDial(c *actor.Context) {
	p.dialing, p.lastErr = true, nil
	p.dialGen++
	ctx, cancel := context.WithCancel(p.n.ctx)
	p.dialCancel = cancel
	n, pid, contact, gen := p.n, c.PID(), p.contact, p.dialGen
	n.dialWG.Add(1)
	go func() {
		defer n.dialWG.Done()
		defer cancel()
		conn, step, tried, took, err := n.climb(ctx, contact)
		if conn != nil && ctx.Err() != nil {
			conn.Close()
			conn, err = nil, ErrClosed
		}
		n.engine.Send(pid, dialResult{conn: conn, step: step, tried: tried, took: took, err: err, gen: gen})
	}()
}

func (p *peer) dialed(c *actor.Context, r dialResult) {
	if r.gen != p.dialGen {
		if r.conn != nil {
			r.conn.Close()
		}
		return
	}
	p.dialing, p.dialCancel = false, nil
	if r.err != nil {
		p.lastErr = r.err
		p.scheduleRedial() // if reconnecting: the next attempt
		if !errors.Is(r.err, ErrClosed) && !errors.Is(r.err, context.Canceled) {
			p.n.report(connOutcome{contact: transport.Contact{ID: p.id}, at: p.n.clock.Now()})
		}
		return
	}
	p.adopt(c, r.conn, r.step, r.tried, r.took)
	// If reconnecting, the next attempt is due in case this connection never goes
	// live (the peer may call it a duplicate of one it still holds).
	p.scheduleRedial()
}

// adopt takes a handshaken connection and, if we decide, decides its fate. took is
// how long the ladder step that made it ran, zero if we did not climb to it.
func (p *peer) adopt(c *actor.Context, conn transport.Conn, kind string, tried []StepResult, took time.Duration) {
	if p.leaving != "" || p.n.ctx.Err() != nil {
		conn.Close()
		return
	}
	if p.n.reflected.note(conn) {
		p.n.externalChanged()
	}
	cs := newConnState(p.n, c.PID(), conn)
	cs.kind, cs.tried = kind, tried
	if took > 0 {
		p.climbed, p.climbTook = cs, took
	}
	p.conns[cs] = struct{}{}
	p.n.open.Add(1)
	cs.start()
	if p.ticker == nil {
		p.ticker = sendEvery(c.Engine(), c.PID(), keepaliveTick{}, p.n.cfg.KeepaliveInterval)
	}
	if !p.smaller {
		cs.awaitingAct = p.n.clock.Now()
		return
	}
	switch {
	case p.active == nil:
		p.activate(cs, p.n.actSeq.Add(1))
	case conn.Outbound() && !p.active.conn.Outbound():
		p.activate(cs, p.n.actSeq.Add(1)) // ours wins over theirs: swap
	default:
		p.sayBye(cs, wire.ReasonDuplicate)
	}
}

func (p *peer) control(m connControl) {
	cs := m.cs
	switch msg := m.msg.(type) {
	case wire.Activate:
		switch {
		case p.smaller:
			p.n.log.Warn("peer sent Activate, but we decide; closing", "peer", p.id.Short())
			p.sayBye(cs, wire.ReasonProtocol)
		case cs.sentBye || cs.closed || cs.readerOver || cs.wasActive || p.leaving != "":
		case msg.Seq <= p.actSeq:
			// An older decision, overtaken by a newer one on another connection. The
			// peer may have sent data on it before moving on: deliver that first.
			p.n.log.Debug("stale Activate: draining the connection", "peer", p.id.Short(), "seq", msg.Seq, "newest", p.actSeq)
			cs.wasActive, cs.activeSeq, cs.afterSeq, cs.awaitingAct = true, msg.Seq, msg.After, time.Time{}
			cs.traffic.Store(p.traffic)
		default:
			if msg.After == 0 && (p.connected || p.draining()) {
				// Nothing comes before this connection: the peer started a new session
				// (it restarted, or lost us). Ours ends here, PeerLost first.
				p.lose("the peer started a new session")
				p.endSession(cs)
			}
			p.actSeq = msg.Seq
			cs.afterSeq = msg.After
			cs.actStreams = msg.Streams
			p.activate(cs, msg.Seq)
		}
	case wire.Pong:
		if cs.pingSeq != msg.Seq || cs.pingAt.IsZero() {
			return
		}
		sample := p.n.clock.Now().Sub(cs.pingAt)
		cs.pingAt = time.Time{}
		if cs == p.active && p.link != nil {
			p.info.RTT = (7*p.info.RTT + sample) / 8
			p.link.stats.rtt.Store(int64(p.info.RTT))
		}
	}
}

// activate makes cs the live connection; seq orders it among the pair's decisions.
func (p *peer) activate(cs *connState, seq uint64) {
	if old := p.active; old != nil {
		p.sayBye(old, wire.ReasonDuplicate)
	}
	if p.lostWhy != "" {
		// The last session is over but its PeerLost still waited for older
		// connections to drain: they belong to that session, so they go now, and
		// PeerLost comes before the new PeerConnected.
		p.endSession(cs)
	}
	p.active = cs
	cs.wasActive, cs.activeSeq, cs.awaitingAct, cs.activatedAt = true, seq, time.Time{}, p.n.clock.Now()
	p.expecting = time.Time{}

	info := PeerInfo{
		ID:        p.id,
		Addr:      transport.AddrPortOf(cs.conn.RemoteAddr()),
		LocalAddr: transport.AddrPortOf(cs.conn.LocalAddr()),
		Kind:      cs.kind,
		RTT:       cs.conn.HandshakeRTT(),
		Since:     p.n.clock.Now(),
		Outbound:  cs.conn.Outbound(),
	}
	if p.queue == nil {
		p.queue = newSendQueue(p.n.cfg.SendQueueMessages, p.n.cfg.SendQueueBytes)
		p.traffic = newTraffic(&p.n.traffic)
	}
	cs.traffic.Store(p.traffic)
	if !p.connected {
		p.startStreams(cs)
		p.connected = true
		p.info = info
		p.n.report(sessionOutcome(cs.conn, cs.kind, p.n.clock.Now()))
		p.n.stats.success(info.Kind)
		p.link = p.n.dir.add(info, p.queue, p.traffic)
		var took time.Duration
		if cs == p.climbed {
			took = p.climbTook
		}
		p.climbed = nil
		p.stopRedial()
		p.n.emit.Control(PeerConnected{ID: p.id, Kind: info.Kind, Addr: info.Addr, RTT: info.RTT, Outbound: info.Outbound, Tried: cs.tried, Took: took})
	} else {
		info.Since, info.RTT = p.info.Since, p.info.RTT
		p.info = info
		p.link = p.n.dir.add(info, p.queue, p.traffic)
	}
	en := enableData{queue: p.queue, traffic: p.traffic, after: p.lastWriterDone, activate: p.smaller, seq: seq, prev: p.lastWriterSeq}
	if p.smaller && p.streams.decided.Mine != 0 {
		d := p.streams.decided
		en.streams = &d
	}
	cs.enableWith(en)
	p.lastWriterDone, p.lastWriterSeq = cs.writerDone, seq
	p.n.log.Debug("connection live", "peer", p.id.Short(), "addr", info.Addr, "outbound", info.Outbound, "seq", seq)
}

// sayBye asks cs's writer to finish with a Goodbye. The connection closes once the
// peer's Goodbye is in (or after HandshakeTimeout of silence).
func (p *peer) sayBye(cs *connState, reason string) {
	if cs.sentBye || cs.closed {
		return
	}
	cs.sentBye, cs.byeAt = true, p.n.clock.Now()
	cs.goodbye(wire.Goodbye{Reason: reason, Dropped: !cs.wasActive})
	if cs == p.active {
		p.active = nil
	}
	if !cs.wasActive {
		cs.discard.Store(true)
		cs.openGate()
	}
}

func (p *peer) closeConn(cs *connState, why string) {
	if cs.closed {
		return
	}
	cs.closed = true
	if cs.closeReason == "" {
		cs.closeReason = why
	}
	cs.stopAll()
	cs.conn.Close()
}

func (p *peer) readerEnded(m readerEnded) {
	cs := m.cs
	if cs.readerOver {
		return // endSession already counted it out (it stays until its writer is through)
	}
	cs.readerOver = true
	p.countDelivered(cs)
	if cs.wasActive {
		if p.drained == nil {
			p.drained = make(map[uint64]bool)
		}
		p.drained[cs.activeSeq] = true
	}
	wasLive := cs == p.active
	if wasLive {
		p.active = nil
	}
	var why string
	if m.bye != nil {
		cs.gotBye = true
		if m.bye.Dropped && cs.wasActive {
			// The peer never took this connection live: what we wrote on it is gone.
			cs.faulted = true
		}
		why = "peer said goodbye: " + m.bye.Reason
		if !cs.sentBye {
			p.sayBye(cs, m.bye.Reason)
		}
		if !p.connected && !cs.wasActive && m.bye.Reason != wire.ReasonDuplicate {
			p.lastErr = fmt.Errorf("connecting to %s: the peer closed the connection: %s", p.id.Short(), m.bye.Reason)
		}
	} else {
		cs.faulted = true
		if isProtocolError(m.err) {
			p.n.log.Warn("closing connection: peer broke the protocol", "peer", p.id.Short(), "addr", cs.conn.RemoteAddr(), "err", m.err)
		}
		p.closeConn(cs, m.err.Error())
		why = "connection failed: " + cs.closeReason
	}
	p.n.log.Debug("connection ended", "peer", p.id.Short(), "why", why, "was_live", wasLive)
	switch {
	case p.leaving != "":
	case m.bye != nil && m.bye.Reason == wire.ReasonDuplicate && !p.smaller && p.active == nil:
		// The peer, which decides, has another connection of the pair live (or about
		// to be): its Activate is on the way, even if that connection is still in our
		// listener's handshake.
		p.expecting = p.n.clock.Now()
	case wasLive:
		p.lose(why)
		if m.bye == nil {
			p.streams.faulted = true
			p.startRedial(cs)
		}
	case cs.wasActive && m.bye == nil && p.connected:
		// A connection that carried data broke before its Goodbye: what it still
		// held is gone. Rather than deliver around a gap, the pair starts over.
		for o := range p.conns {
			p.closeConn(o, "an earlier connection of the pair broke: "+why)
		}
		p.lose("connection broke while being replaced: " + why)
		p.streams.faulted = true
		p.startRedial(cs)
	}
}

func (p *peer) writerEnded(m writerEnded) {
	cs := m.cs
	cs.writerOver = true
	if m.err != nil && !errors.Is(m.err, errAborted) {
		p.closeConn(cs, "write failed: "+m.err.Error())
	}
}

// lose ends the peer's connected state: sends fail from now on, and PeerLost is
// reported once every connection that carried data has been read to its end.
func (p *peer) lose(reason string) {
	p.expecting, p.actSeq = time.Time{}, 0
	p.closeQueue()
	if p.connected && p.lostWhy == "" {
		p.lostWhy = reason
	}
}

// endSession closes every connection but keep, drops what they still held, and
// reports a pending PeerLost now.
func (p *peer) endSession(keep *connState) {
	for o := range p.conns {
		if o != keep {
			p.closeConn(o, "its session ended")
			o.readerOver = true // its reader is aborted: nothing more comes from it
			// Cut off mid-stream: what it wrote and the peer did not acknowledge may not
			// have arrived. It is reported once its writer is through, on its own: the
			// session it belonged to is over.
			o.faulted, o.cutOff = true, true
		}
	}
	if p.active != keep {
		p.active = nil
	}
	p.emitLost()
}

// emitLost reports the pending PeerLost, after the session's Undelivered.
func (p *peer) emitLost() {
	if p.lostWhy == "" {
		return
	}
	p.suspendStreams()
	p.emitUndelivered()
	p.connected = false
	p.drained, p.lastWriterSeq = nil, 0 // the next session starts afresh
	p.n.emit.Control(PeerLost{ID: p.id, Reason: p.lostWhy, Reconnecting: p.redialing()})
	p.n.log.Debug("peer lost", "peer", p.id.Short(), "reason", p.lostWhy)
	p.lostWhy = ""
}

func (p *peer) closeQueue() {
	if p.queue != nil {
		p.n.dir.remove(p.id)
		if left := p.queue.close(); left.msgs > 0 {
			p.unconfirmedRun(left.first, left.messages(), true)
			left.free()
		}
		p.queue, p.link, p.traffic = nil, nil, nil
	}
}

func (p *peer) tick() {
	now := p.n.clock.Now()
	for cs := range p.conns {
		lastRead := time.Unix(0, cs.lastRead.Load())
		switch {
		case cs.closed || cs.readerOver || cs.stalled.Load():
		case now.Sub(lastRead) > p.n.cfg.PeerTimeout:
			p.closeConn(cs, fmt.Sprintf("timeout: nothing heard for %v", p.n.cfg.PeerTimeout))
		case cs.sentBye && now.Sub(later(cs.byeAt, lastRead)) > p.n.cfg.HandshakeTimeout:
			// Counted from the last frame: a long drain before the peer's Goodbye is
			// data still arriving, not a peer that does not answer.
			p.closeConn(cs, "peer did not answer Goodbye")
		case !cs.awaitingAct.IsZero() && !cs.sentBye && now.Sub(cs.awaitingAct) > p.n.cfg.HandshakeTimeout:
			p.lastErr = fmt.Errorf("connecting to %s: the peer neither activated nor refused the connection within %v", p.id.Short(), p.n.cfg.HandshakeTimeout)
			p.sayBye(cs, wire.ReasonTimeout)
		}
	}
	if cs := p.active; cs != nil && cs.afterSeq != 0 && !p.drained[cs.afterSeq] && now.Sub(cs.activatedAt) > p.n.cfg.HandshakeTimeout {
		// The connection whose data comes first never showed up: rather than wait
		// forever or deliver around a gap, the pair starts over.
		for o := range p.conns {
			p.closeConn(o, "the connection replaced by this one never arrived")
		}
		p.lose("the connection being replaced never arrived")
	}
	if !p.expecting.IsZero() && now.Sub(p.expecting) > p.n.cfg.HandshakeTimeout {
		p.lastErr = fmt.Errorf("connecting to %s: the peer called our connection a duplicate, but activated none within %v", p.id.Short(), p.n.cfg.HandshakeTimeout)
		p.lose("peer moved to another connection, which did not arrive")
	}
	if cs := p.active; cs != nil {
		cs.pingSeq++
		cs.pingAt = now
		cs.control(wire.Ping{Seq: cs.pingSeq})
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// settle runs after every message: it opens reader gates in order, drops finished
// connections, reports a pending PeerLost, answers Connect callers, and stops the
// ticker or retires the actor when idle.
func (p *peer) settle(c *actor.Context) {
	for cs := range p.conns {
		if cs.wasActive && p.mayDeliver(cs) {
			cs.openGate()
		}
		// Both goroutines are through (the writer reports even when aborted), so
		// what the connection wrote is final.
		if cs.readerOver && cs.writerOver {
			if cs.gotBye && cs.writerOver && !cs.closed {
				// Both Goodbyes are through our hands. Closing outright could still cut
				// ours off in flight (QUIC drops unacknowledged data on close); the
				// transport closes once the peer has it.
				cs.closed = true
				cs.stopAll()
				cs.conn.CloseAfterPeer(p.n.cfg.HandshakeTimeout)
			}
			p.closeConn(cs, "done")
			delete(p.conns, cs)
			p.n.open.Add(-1)
			switch first, lost := cs.sent.unacked(); {
			case cs.cutOff && len(lost) > 0:
				p.giveBack(lost)
			case cs.faulted:
				p.unconfirmedRun(first, lost, false)
			}
		}
	}
	if p.leaving != "" && len(p.conns) == 0 {
		p.lose(p.leaving)
	}
	if !p.draining() && !p.reporting() {
		p.emitLost()
		if !p.connected {
			p.emitUndelivered() // what a connection reported after its session's PeerLost
		}
	}
	if p.leaving != "" && len(p.conns) == 0 {
		if p.shutdownDone != nil {
			close(p.shutdownDone)
			p.shutdownDone = nil
			return
		}
		p.leaving = ""
	}
	switch {
	case p.connected && p.lostWhy == "":
		p.resolve(nil)
	case !p.connected && !p.dialing && p.expecting.IsZero() && !p.pending():
		err := p.lastErr
		if err == nil {
			err = fmt.Errorf("connecting to %s: %w", p.id.Short(), ErrNotConnected)
		}
		p.fail(err)
	}
	if p.ticker != nil && len(p.conns) == 0 && p.expecting.IsZero() {
		p.ticker.Stop()
		p.ticker = nil
	}
	if len(p.conns) == 0 && !p.connected && !p.dialing && len(p.waiters) == 0 && p.expecting.IsZero() && p.leaving == "" && !p.redialing() {
		p.retired = true
		c.Send(p.parent, peerIdle{id: p.id, pid: p.pid})
	}
}

// mayDeliver reports whether cs's data may go to the application now: the connection
// its Activate names as coming before it has been read to its end (larger side), as
// has every connection activated before it, and (larger side, where Activates can
// overtake each other) no connection still waits for the peer's decision.
func (p *peer) mayDeliver(cs *connState) bool {
	if cs.afterSeq != 0 && !p.drained[cs.afterSeq] {
		return false
	}
	for o := range p.conns {
		if o == cs || o.readerOver {
			continue
		}
		if o.wasActive && o.activeSeq < cs.activeSeq {
			return false
		}
		if !p.smaller && !o.wasActive && !o.sentBye && !o.closed {
			return false
		}
	}
	return true
}

// reporting reports whether a failed connection that carried data still has its
// writer running: what it wrote is not final, and its Undelivered comes before
// PeerLost.
func (p *peer) reporting() bool {
	for cs := range p.conns {
		if cs.wasActive && cs.faulted && !cs.writerOver {
			return true
		}
	}
	return false
}

// draining reports whether a connection that carried data is still being read.
func (p *peer) draining() bool {
	for cs := range p.conns {
		if cs.wasActive && !cs.readerOver {
			return true
		}
	}
	return false
}

// pending reports whether a connection may still go live.
func (p *peer) pending() bool {
	for cs := range p.conns {
		if !cs.sentBye && !cs.readerOver && !cs.closed {
			return true
		}
	}
	return false
}

func (p *peer) resolve(err error) {
	for _, w := range p.waiters {
		w <- err
	}
	p.waiters = nil
}

func (p *peer) fail(err error) {
	if len(p.waiters) > 0 {
		p.resolve(err)
	}
}
