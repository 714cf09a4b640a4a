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
//     if it has one, else the first that completes, and sends Activate on it. Every
//     other connection gets Goodbye{duplicate}.
//   - The node with the larger NodeID sends data only on a connection it received
//     Activate on.
//   - On a swap the old writer flushes, writes Goodbye and stops before the new one
//     starts, and the new reader delivers only after the old reader saw the peer's
//     Goodbye, so messages stay in order and none is lost across the swap.
//
// The application sees PeerConnected when the first connection goes live and PeerLost
// when the live one ends with no replacement on the way; swaps are invisible.
type peer struct {
	n       *node
	id      identity.NodeID
	smaller bool // we have the smaller NodeID: we decide which connection is live
	pid     *actor.PID

	conns      map[*connState]struct{}
	active     *connState // the live connection, or nil
	lastWriter *connState // the last connection whose writer drained the queue
	activeSeq  uint64

	connected bool       // the application saw PeerConnected and no PeerLost since
	queue     *sendQueue // while connected
	info      PeerInfo
	expecting time.Time // larger side: the peer said another connection is live; its Activate is due
	actSeq    uint64    // larger side: Seq of the newest Activate followed

	contact transport.Contact // where to dial: the latest Connect's
	dialing bool
	lastErr error
	waiters []chan<- error

	leaving      string        // non-empty: we said Goodbye to all; the reason
	shutdownDone chan struct{} // closed when leaving for shutdown is through
	ticker       *actor.SendRepeater
}

func newPeer(n *node, id identity.NodeID) actor.Producer {
	return func() actor.Receiver {
		return &peer{n: n, id: id, smaller: n.self.Less(id), conns: make(map[*connState]struct{})}
	}
}

func (p *peer) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Started:
		p.pid = c.PID()
	case actor.Stopped:
		p.stop()
	case ConnectPeer:
		p.connect(c, msg)
	case DisconnectPeer:
		msg.Result <- p.disconnect()
	case peerShutdown:
		p.shutdown(msg.done)
	case InboundConn:
		p.adopt(c, msg.Conn, msg.Conn.Proto()+"-direct", nil)
	case dialResult:
		p.dialed(c, msg)
	case connControl:
		p.control(msg)
	case readerEnded:
		p.readerEnded(msg)
	case writerEnded:
		p.writerEnded(msg)
	case keepaliveTick:
		p.tick()
	case countConns:
		n := len(p.conns)
		if p.dialing {
			n++
		}
		msg.result <- n
	case actor.Initialized:
	default:
		p.n.log.Warn("peer actor: unexpected message", "peer", p.id.Short(), "type", fmt.Sprintf("%T", msg))
	}
	p.settle()
}

func (p *peer) connect(c *actor.Context, msg ConnectPeer) {
	switch {
	case p.connected:
		msg.Result <- nil
		return
	case p.leaving != "":
		msg.Result <- fmt.Errorf("connecting to %s: still disconnecting; retry after PeerLost", p.id.Short())
		return
	}
	p.contact = msg.Contact
	p.waiters = append(p.waiters, msg.Result)
	if !p.dialing {
		p.startDial(c)
	}
}

func (p *peer) disconnect() error {
	if !p.connected && len(p.conns) == 0 {
		return ErrNotConnected
	}
	p.leave("disconnected locally", wire.ReasonDisconnect)
	return nil
}

func (p *peer) shutdown(done chan struct{}) {
	p.shutdownDone = done
	p.leave("shut down", wire.ReasonShutdown)
}

// leave says Goodbye on every connection. Sends fail from now on; PeerLost follows
// when the connections are through.
func (p *peer) leave(why, reason string) {
	p.leaving = why
	p.closeQueue()
	for cs := range p.conns {
		p.sayBye(cs, reason)
	}
	p.fail(fmt.Errorf("connecting to %s: %s", p.id.Short(), why))
}

// stop runs when the actor is stopped: whatever is left is closed without ceremony.
func (p *peer) stop() {
	if p.ticker != nil {
		p.ticker.Stop()
		p.ticker = nil
	}
	for cs := range p.conns {
		p.closeConn(cs, "node stopped")
	}
	p.closeQueue()
	p.fail(ErrClosed)
	if p.shutdownDone != nil {
		close(p.shutdownDone)
		p.shutdownDone = nil
	}
}

func (p *peer) startDial(c *actor.Context) {
	p.dialing = true
	n, pid, contact := p.n, c.PID(), p.contact
	n.dialWG.Add(1)
	go func() {
		defer n.dialWG.Done()
		conn, step, tried, err := n.climb(n.ctx, contact)
		n.engine.Send(pid, dialResult{conn: conn, step: step, tried: tried, err: err})
	}()
}

func (p *peer) dialed(c *actor.Context, r dialResult) {
	p.dialing = false
	if r.err != nil {
		p.lastErr = r.err
		return
	}
	p.adopt(c, r.conn, r.step, r.tried)
}

// adopt takes a handshaken connection and, if we decide, decides its fate.
func (p *peer) adopt(c *actor.Context, conn transport.Conn, kind string, tried []StepResult) {
	if p.leaving != "" || p.n.ctx.Err() != nil {
		conn.Close()
		return
	}
	p.n.reflected.note(conn)
	cs := newConnState(p.n, c.PID(), conn)
	cs.kind, cs.tried = kind, tried
	p.conns[cs] = struct{}{}
	cs.start()
	if p.ticker == nil {
		t := c.Engine().SendRepeat(c.PID(), keepaliveTick{}, p.n.cfg.KeepaliveInterval)
		p.ticker = &t
	}
	if !p.smaller {
		cs.awaitingAct = p.n.clock.Now()
		return
	}
	switch {
	case p.active == nil:
		p.activate(cs)
	case conn.Outbound() && !p.active.conn.Outbound():
		p.activate(cs) // ours wins over theirs: swap
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
		case cs.sentBye || cs == p.active || p.leaving != "":
		case msg.Seq <= p.actSeq:
			// An older decision overtaken by a newer one on another connection.
			p.n.log.Debug("ignoring stale Activate", "peer", p.id.Short(), "seq", msg.Seq, "newest", p.actSeq)
		default:
			p.actSeq = msg.Seq
			p.activate(cs)
		}
	case wire.Pong:
		if cs.pingSeq != msg.Seq || cs.pingAt.IsZero() {
			return
		}
		sample := p.n.clock.Now().Sub(cs.pingAt)
		cs.pingAt = time.Time{}
		if cs == p.active && p.connected {
			p.info.RTT = (7*p.info.RTT + sample) / 8
			rtt := p.info.RTT
			p.n.dir.update(p.id, func(i *PeerInfo) { i.RTT = rtt })
		}
	}
}

// activate makes cs the live connection.
func (p *peer) activate(cs *connState) {
	old := p.active
	if old != nil {
		p.sayBye(old, wire.ReasonDuplicate)
	}
	p.active = cs
	p.activeSeq++
	cs.wasActive, cs.activeSeq, cs.awaitingAct = true, p.activeSeq, time.Time{}
	p.expecting = time.Time{}

	now := p.n.clock.Now()
	info := PeerInfo{
		ID:        p.id,
		Addr:      transport.AddrPortOf(cs.conn.RemoteAddr()),
		LocalAddr: transport.AddrPortOf(cs.conn.LocalAddr()),
		Kind:      cs.kind,
		RTT:       cs.conn.HandshakeRTT(),
		Since:     now,
		Outbound:  cs.conn.Outbound(),
	}
	if !p.connected {
		p.connected = true
		p.info = info
		p.queue = newSendQueue(p.n.cfg.SendQueueMessages, p.n.cfg.SendQueueBytes)
		p.n.dir.add(info, p.queue)
		p.n.emit.Control(PeerConnected{ID: p.id, Kind: info.Kind, Addr: info.Addr, RTT: info.RTT, Outbound: info.Outbound, Tried: cs.tried})
	} else {
		info.Since, info.RTT = p.info.Since, p.info.RTT
		p.info = info
		p.n.dir.update(p.id, func(i *PeerInfo) { *i = info })
	}
	after := (<-chan struct{})(closedChan)
	if p.lastWriter != nil {
		after = p.lastWriter.writerDone
	}
	p.lastWriter = cs
	en := enableData{queue: p.queue, after: after, activate: p.smaller}
	if p.smaller {
		en.seq = p.n.actSeq.Add(1)
	}
	cs.enable <- en
	p.n.log.Debug("connection live", "peer", p.id.Short(), "addr", info.Addr, "outbound", info.Outbound)
}

// sayBye asks cs's writer to finish with a Goodbye. The connection closes once the
// peer's Goodbye is in (or after HandshakeTimeout).
func (p *peer) sayBye(cs *connState, reason string) {
	if cs.sentBye || cs.closed {
		return
	}
	cs.sentBye, cs.byeAt = true, p.n.clock.Now()
	cs.bye <- wire.Goodbye{Reason: reason}
	if cs == p.active {
		p.active = nil
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
	cs.readerOver = true
	wasActive := cs == p.active
	if wasActive {
		p.active = nil
	}
	var why string
	switch {
	case m.bye != nil:
		cs.gotBye = true
		why = "peer said goodbye: " + m.bye.Reason
		if !cs.sentBye {
			p.sayBye(cs, m.bye.Reason)
		}
	default:
		if isProtocolError(m.err) {
			p.n.log.Warn("closing connection: peer broke the protocol", "peer", p.id.Short(), "addr", cs.conn.RemoteAddr(), "err", m.err)
		}
		p.closeConn(cs, m.err.Error())
		why = "connection failed: " + cs.closeReason
	}
	p.n.log.Debug("connection ended", "peer", p.id.Short(), "why", why, "was_live", wasActive)
	if p.leaving != "" {
		return
	}
	if m.bye != nil && m.bye.Reason == wire.ReasonDuplicate && !p.smaller && p.active == nil {
		// The peer, which decides, has another connection of the pair live (or about
		// to be): its Activate is on the way, even if that connection is still in our
		// listener's handshake.
		p.expecting = p.n.clock.Now()
		return
	}
	if wasActive {
		p.lose(why)
	}
}

func (p *peer) writerEnded(m writerEnded) {
	cs := m.cs
	cs.writerOver = true
	if m.err != nil {
		p.closeConn(cs, "write failed: "+m.err.Error())
	}
}

// lose reports the peer lost, once.
func (p *peer) lose(reason string) {
	p.expecting, p.actSeq = time.Time{}, 0
	p.closeQueue()
	if !p.connected {
		return
	}
	p.connected = false
	p.n.emit.Control(PeerLost{ID: p.id, Reason: reason})
	p.n.log.Info("peer lost", "peer", p.id.Short(), "reason", reason)
}

func (p *peer) closeQueue() {
	if p.queue != nil {
		p.n.dir.remove(p.id)
		p.queue.close()
		p.queue = nil
	}
}

func (p *peer) tick() {
	now := p.n.clock.Now()
	for cs := range p.conns {
		switch {
		case cs.closed:
		case !cs.readerOver && !cs.stalled.Load() && now.Sub(time.Unix(0, cs.lastRead.Load())) > p.n.cfg.PeerTimeout:
			p.closeConn(cs, fmt.Sprintf("timeout: nothing heard for %v", p.n.cfg.PeerTimeout))
		case cs.sentBye && now.Sub(cs.byeAt) > p.n.cfg.HandshakeTimeout:
			p.closeConn(cs, "peer did not answer Goodbye")
		case !cs.awaitingAct.IsZero() && !cs.sentBye && now.Sub(cs.awaitingAct) > p.n.cfg.HandshakeTimeout:
			p.lastErr = fmt.Errorf("connecting to %s: the peer neither activated nor refused the connection within %v", p.id.Short(), p.n.cfg.HandshakeTimeout)
			p.sayBye(cs, wire.ReasonTimeout)
		}
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

// settle runs after every message: it opens reader gates in activation order, drops
// finished connections, answers Connect callers and stops the ticker when idle.
func (p *peer) settle() {
	for cs := range p.conns {
		if cs.wasActive && !p.drainingBefore(cs) {
			cs.openGate()
		}
		if cs.readerOver && (cs.writerOver || cs.closed) {
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
		}
	}
	if p.connected {
		p.resolve(nil)
	} else if !p.dialing && p.expecting.IsZero() && !p.pending() {
		err := p.lastErr
		if err == nil {
			err = fmt.Errorf("connecting to %s: %w", p.id.Short(), ErrNotConnected)
		}
		p.fail(err)
	}
	if p.leaving != "" && len(p.conns) == 0 {
		p.lose(p.leaving)
		if p.shutdownDone != nil {
			close(p.shutdownDone)
			p.shutdownDone = nil
		} else {
			p.leaving = ""
		}
	}
	if p.ticker != nil && len(p.conns) == 0 {
		p.ticker.Stop()
		p.ticker = nil
	}
}

// drainingBefore reports whether a connection activated before cs still has a reader
// running: its data must be delivered first.
func (p *peer) drainingBefore(cs *connState) bool {
	for o := range p.conns {
		if o != cs && o.wasActive && o.activeSeq < cs.activeSeq && !o.readerOver {
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

// dialFirst dials eps happy-eyeballs style: the next attempt starts after DialStagger
// or when the previous one fails, and the first verified connection wins. Losers are
// closed. The error joins every attempt's error.
func (n *node) dialFirst(ctx context.Context, eps []transport.Endpoint, want identity.NodeID) (transport.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn transport.Conn
		err  error
	}
	results := make(chan result, len(eps))
	next, running := 0, 0
	startNext := func() {
		ep := eps[next]
		next++
		running++
		go func() {
			c, err := n.protos[ep.Proto].Dial(ctx, ep, want)
			results <- result{c, err}
		}()
	}
	stagger := time.NewTimer(n.cfg.DialStagger)
	defer stagger.Stop()
	startNext()
	var errs []error
	for running > 0 {
		select {
		case r := <-results:
			running--
			if r.err == nil {
				cancel()
				for ; running > 0; running-- {
					if late := <-results; late.conn != nil {
						late.conn.Close()
					}
				}
				if ctx := n.ctx; ctx.Err() != nil {
					r.conn.Close()
					return nil, ErrClosed
				}
				return r.conn, nil
			}
			errs = append(errs, r.err)
			if next < len(eps) {
				startNext()
				stagger.Reset(n.cfg.DialStagger)
			}
		case <-stagger.C:
			if next < len(eps) {
				startNext()
				stagger.Reset(n.cfg.DialStagger)
			}
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}
