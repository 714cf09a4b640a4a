package actors

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Resuming after a fault: the first half of Send's promise (acks.go). Each side's
// messages to the peer form a stream, numbered from 0, that runs on across the
// connection swaps of a session. When a session ends in a fault (no Goodbye) and we
// reconnect, the messages it left unconfirmed (written and not acknowledged, or still
// queued) are held rather than given back, and the receiver remembers how many of
// the stream it handed to its application. The next connection's Hellos carry both:
// ours names our stream (Hello.Stream, the held one's if we hold any), the peer's
// says how far it got with it (Hello.Resume). If they match, the stream goes on from
// there: the held messages the peer did not get are written first, in order, and
// the ones it got are dropped: each message arrives once. If not (the peer restarted,
// forgot, or is too old, or we stop reconnecting), what we held comes back in
// Undelivered, as it would have without a reconnect.
//
// Both ends decide from the two Hellos alone, so they agree on where the stream
// stands without another round trip.

// Delivery counts what Send's promise did since the node started.
type Delivery struct {
	// Resumed counts the sessions that went on with a stream a fault had
	// interrupted, and Resent the held messages they wrote again.
	Resumed, Resent uint64
	// Unacknowledged and Unsent count the messages given back in Undelivered events,
	// by kind.
	Unacknowledged, Unsent uint64
}

// deliveryCounters are the node's Delivery, counted as it goes.
type deliveryCounters struct {
	resumed, resent, unacked, unsent atomic.Uint64
}

// Delivery returns what Send's promise did since the node started: streams resumed
// after a fault, messages resent, and messages given back in Undelivered.
func (nd *Node) Delivery() Delivery {
	d := &nd.n.delivery
	return Delivery{Resumed: d.resumed.Load(), Resent: d.resent.Load(), Unacknowledged: d.unacked.Load(), Unsent: d.unsent.Load()}
}

// heldMsg is one of our messages whose fate a fault left open: its number in the
// stream, a copy of its payload, and whether it was ever written.
type heldMsg struct {
	pos    uint64
	data   []byte
	unsent bool
}

// streams is a peer actor's account of both streams of the session.
type streams struct {
	outID       uint64       // our stream (our Hello's Stream on the session's first connection)
	peerResumes bool         // the peer's Hello named a stream: it resumes
	inID        uint64       // the peer's stream
	inBase      uint64       // messages of inID delivered before this session
	inDone      uint64       // delivered on this session's connections whose reader is over
	faulted     bool         // the session is ending in a fault, not a Goodbye
	decided     wire.Streams // smaller side: the plan its Activates carry

	// unconfirmed are the session's messages that may not have arrived, in no
	// particular order; held says they wait for a resume instead of Undelivered.
	unconfirmed []heldMsg
	held        bool
}

// resumeStore is what the Hello builder needs from the peer actors, kept by the node
// because a peer actor may retire between two sessions.
type resumeStore struct {
	mu sync.Mutex
	m  map[identity.NodeID]*resumeEntry
}

// resumeEntry is one peer's: the stream we hold messages of, and how far we got with
// the peer's stream before a fault, until when.
type resumeEntry struct {
	out     uint64
	in      wire.Resume
	inUntil time.Time
}

// maxResumeEntries bounds the store; entries past their time go first.
const maxResumeEntries = 1 << 16

// fillHello sets our Hello's Stream and Resume for a connection to peer.
func (n *node) fillHello(peer identity.NodeID, h *wire.Hello) {
	s := &n.resumes
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[peer]
	h.Stream = 0
	if e != nil && e.out != 0 {
		h.Stream = e.out
	}
	for h.Stream == 0 {
		h.Stream = rand.Uint64()
	}
	if e != nil && e.in.Stream != 0 && n.clock.Now().Before(e.inUntil) {
		in := e.in
		h.Resume = &in
	}
}

// update changes peer's entry with f, dropping it once empty.
func (s *resumeStore) update(peer identity.NodeID, now time.Time, f func(e *resumeEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[peer]
	if e == nil {
		e = new(resumeEntry)
	}
	f(e)
	if e.in.Stream != 0 && !now.Before(e.inUntil) {
		e.in = wire.Resume{}
	}
	if e.out == 0 && e.in.Stream == 0 {
		delete(s.m, peer)
		return
	}
	if s.m == nil {
		s.m = make(map[identity.NodeID]*resumeEntry)
	}
	if _, ok := s.m[peer]; !ok && len(s.m) >= maxResumeEntries {
		for id, o := range s.m {
			if o.out == 0 && !now.Before(o.inUntil) {
				delete(s.m, id)
			}
		}
		if len(s.m) >= maxResumeEntries {
			return // full of live entries: this peer's session will not resume
		}
	}
	s.m[peer] = e
}

// streamPlan is where a session's two streams stand, from our side.
type streamPlan struct {
	out, outFrom uint64 // our stream, and the number of its first message in the session
	outResumed   bool   // the peer's count goes on from outFrom: resend what we hold from there
	in, inFrom   uint64 // the peer's stream, and how many of it we delivered before
	inResumed    bool   // our count goes on from inFrom (what the smaller node tells)
}

// planFromHellos is the plan the Hellos of one connection make: the smaller node's,
// made on the session's first connection.
func planFromHellos(ours, theirs *wire.Hello) streamPlan {
	var pl streamPlan
	if ours == nil || theirs == nil {
		return pl
	}
	pl.out, pl.in = ours.Stream, theirs.Stream
	if r := theirs.Resume; r != nil && r.Stream != 0 && r.Stream == ours.Stream {
		pl.outFrom, pl.outResumed = r.Delivered, true
	}
	if r := ours.Resume; r != nil && theirs.Stream != 0 && r.Stream == theirs.Stream {
		pl.inFrom, pl.inResumed = r.Delivered, true
	}
	return pl
}

// planFromActivate is the smaller node's plan, as its Activate tells it, from our
// side.
func planFromActivate(s *wire.Streams) streamPlan {
	return streamPlan{out: s.Yours, outFrom: s.YoursFrom, outResumed: s.YoursResumed, in: s.Mine, inFrom: s.MineFrom}
}

// startStreams sets up a new session's streams and resumes our held messages if the
// plan lets us: what comes back instead is reported before PeerConnected. The
// smaller node plans from the Hellos of the session's first connection and sends
// the plan in every Activate of the session; the larger node follows the Activate
// (the Activates of two connections can overtake each other, and two connections'
// Hellos need not agree), or the Hellos if the peer predates that.
func (p *peer) startStreams(cs *connState) {
	st := &p.streams
	heldID := st.outID // the stream our held messages belong to
	ours, theirs := cs.conn.LocalHello(), cs.conn.PeerHello()
	pl := planFromHellos(ours, theirs)
	if !p.smaller && cs.actStreams != nil {
		pl = planFromActivate(cs.actStreams)
	}
	st.outID, st.inID, st.inBase, st.inDone, st.faulted = pl.out, pl.in, pl.inFrom, 0, false
	st.peerResumes = theirs != nil && theirs.Stream != 0 && theirs.Acks
	st.decided = wire.Streams{}
	if p.smaller && pl.out != 0 {
		st.decided = wire.Streams{Yours: pl.in, YoursFrom: pl.inFrom, YoursResumed: pl.inResumed, Mine: pl.out, MineFrom: pl.outFrom}
	}
	p.n.resumes.update(p.id, p.n.clock.Now(), func(e *resumeEntry) { *e = resumeEntry{} })
	p.queue.startAt(pl.outFrom)
	if st.held {
		st.held = false
		if pl.outResumed && pl.out == heldID {
			held := len(st.unconfirmed)
			var resent int
			resent, st.unconfirmed = p.queue.resend(st.unconfirmed, pl.outFrom)
			p.n.delivery.resumed.Add(1)
			p.n.delivery.resent.Add(uint64(resent))
			p.n.log.Info("resumed after the fault", "peer", p.id.Short(), "stream_at", pl.outFrom, "held", held, "resent", resent)
			if n := len(st.unconfirmed); n > 0 {
				p.n.log.Warn("resuming: held messages do not follow on from what the peer has; giving them back", "peer", p.id.Short(), "from", pl.outFrom, "count", n)
			}
		}
		p.emitUndelivered()
	}
}

// unconfirmedRun adds messages the session may not have delivered: msgs, numbered
// from first; unsent if never written. Held ones wait for the resume.
func (p *peer) unconfirmedRun(first uint64, msgs [][]byte, unsent bool) {
	for i, m := range msgs {
		p.streams.unconfirmed = append(p.streams.unconfirmed, heldMsg{pos: first + uint64(i), data: m, unsent: unsent})
	}
}

// countDelivered adds what an active connection's reader delivered to the session's
// count: final once the reader is over.
func (p *peer) countDelivered(cs *connState) {
	if cs.wasActive {
		cs.acks.mu.Lock()
		p.streams.inDone += cs.acks.delivered
		cs.acks.mu.Unlock()
	}
}

// suspendStreams runs as the session's PeerLost goes out. After a fault it keeps, for
// the next connection's Hello, how much of the peer's stream we delivered; and if
// we reconnect to a peer that resumes, our unconfirmed messages are held for it
// rather than given back.
func (p *peer) suspendStreams() {
	st := &p.streams
	if !st.faulted {
		return
	}
	now := p.n.clock.Now()
	hold := p.redialing() && st.peerResumes && st.outID != 0
	keepIn := st.inID != 0 && st.peerResumes && p.n.cfg.ReconnectFor >= 0 // counted only if it acks
	if !hold && !keepIn {
		return
	}
	if hold {
		st.held = true
	}
	in := wire.Resume{Stream: st.inID, Delivered: st.inBase + st.inDone}
	p.n.resumes.update(p.id, now, func(e *resumeEntry) {
		if hold {
			e.out = st.outID
		}
		if keepIn {
			e.in, e.inUntil = in, now.Add(max(p.n.cfg.ReconnectFor, time.Minute))
		}
	})
	st.faulted = false
}

// releaseHeld gives back what we held for a resume that will not come (we stopped
// reconnecting).
func (p *peer) releaseHeld() {
	if !p.streams.held {
		return
	}
	p.streams.held = false
	p.n.resumes.update(p.id, p.n.clock.Now(), func(e *resumeEntry) { e.out = 0 })
	p.emitUndelivered()
}

// emitUndelivered reports the messages of the session that may not have arrived,
// unless they are held for a resume.
func (p *peer) emitUndelivered() {
	st := &p.streams
	if st.held || len(st.unconfirmed) == 0 {
		return
	}
	slices.SortFunc(st.unconfirmed, byPos)
	u := Undelivered{ID: p.id}
	for _, m := range st.unconfirmed {
		if m.unsent {
			u.Unsent = append(u.Unsent, m.data)
		} else {
			u.Unacknowledged = append(u.Unacknowledged, m.data)
		}
	}
	st.unconfirmed = nil
	p.report(u)
}

// report emits u, counts it and logs its size.
func (p *peer) report(u Undelivered) {
	p.n.delivery.unacked.Add(uint64(len(u.Unacknowledged)))
	p.n.delivery.unsent.Add(uint64(len(u.Unsent)))
	p.n.emit.Control(u)
	p.n.log.Info("messages not delivered", "peer", p.id.Short(), "unacknowledged", len(u.Unacknowledged), "unsent", len(u.Unsent))
}

// giveBackAtStop reports, as the node stops, what the connections still open wrote
// and the peer did not acknowledge, with what was queued (stop has released what was
// held): nothing is dropped without a word, even when the peer did not answer
// Goodbye within the grace. It waits up to a second for the writers, which stop at
// once, to be through.
func (p *peer) giveBackAtStop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for cs := range p.conns {
		select {
		case <-cs.writerDone:
		case <-ctx.Done():
		}
		if first, lost := cs.sent.unacked(); len(lost) > 0 {
			p.unconfirmedRun(first, lost, false)
		}
	}
	p.emitUndelivered()
}

// giveBack reports unacknowledged messages of a connection cut off from a session
// that is over, in an Undelivered of their own.
func (p *peer) giveBack(msgs [][]byte) { p.report(Undelivered{ID: p.id, Unacknowledged: msgs}) }

// byPos orders held messages by their number in the stream.
func byPos(a, b heldMsg) int { return cmp.Compare(a.pos, b.pos) }
