package actors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/time/rate"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Rendezvous limits.
const (
	// maxRendezvous is how many connected peers an initiator asks at once to pass
	// its punch request on.
	maxRendezvous = 3
	// rendezvousTimeout bounds the wait for the peer's answer through a rendezvous,
	// and a responder's wait for Sync.
	rendezvousTimeout = 3 * time.Second
	// maxResponders bounds the punches this node answers at once: each sends
	// packets toward endpoints the other side named.
	maxResponders = 8
)

// Punch message kinds, the Kind of a punchBody.
const (
	punchConnect uint8 = 1 // initiator → responder: my contact; answer with yours
	punchReply   uint8 = 2 // responder → initiator: my contact
	punchSync    uint8 = 3 // initiator → responder: start now (I start in RTT/2)
	punchRefuse  uint8 = 4 // either way: no punch (Reason says why)
)

// punchBody is a Relay's Body between the two ends of a hole punch (DCUtR-like:
// Connect, Reply, then Sync, timed by the round trip measured through the relay).
type punchBody struct {
	Kind    uint8  `msgpack:"k"`
	ID      uint64 `msgpack:"i"`
	Proto   string `msgpack:"p,omitempty"`
	Contact []byte `msgpack:"c,omitempty"`
	Reason  string `msgpack:"r,omitempty"`
}

// decodePunchBody decodes and checks a Relay body.
func decodePunchBody(b []byte) (punchBody, error) {
	var m punchBody
	if err := wire.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("malformed punch message: %w", err)
	}
	if m.Kind < punchConnect || m.Kind > punchRefuse {
		return m, fmt.Errorf("malformed punch message: kind %d", m.Kind)
	}
	if m.Proto != "" && m.Proto != "tcp" && m.Proto != "quic" {
		return m, fmt.Errorf("malformed punch message: protocol %.20q", m.Proto)
	}
	if len(m.Reason) > 256 {
		m.Reason = m.Reason[:256]
	}
	return m, nil
}

// punchPlan is what the Rendezvous actor tells a punch initiator.
type punchPlan struct {
	// contact is the peer's contact, fresh from its Reply.
	contact transport.Contact
	// start is when to start punching (the peer starts on our Sync, RTT/2 later).
	start time.Time
	// rtt is the round trip to the peer through the rendezvous.
	rtt time.Duration
	// via is the rendezvous node.
	via identity.NodeID
	// id is the attempt's, for punchDone.
	id uint64
	// blind: no rendezvous could be used; punch now toward the contact the caller
	// has, in case the peer punches too (the embedding layer's own exchange).
	blind bool
	// follow: the peer's punch goes first; wait for it to connect us.
	follow bool
	err    error
}

type (
	// relayIn is a Relay frame read from a peer (via).
	relayIn struct {
		via identity.NodeID
		msg wire.Relay
	}
	// relayOut asks the Supervisor to write a Relay frame to the neighbour to.
	relayOut struct {
		to  identity.NodeID
		msg wire.Relay
	}
	// punchStart asks the Rendezvous actor to arrange a punch with peer.
	punchStart struct {
		peer    identity.NodeID
		proto   string
		contact transport.Contact // the peer's, as the caller has it
		plan    chan punchPlan
	}
	// punchCancel: the caller waiting on plan gave up before the plan came.
	punchCancel struct {
		peer identity.NodeID
		plan chan punchPlan
	}
	// punchDone ends an attempt.
	punchDone struct {
		peer identity.NodeID
		id   uint64
	}
	// punchTimeout fires when an attempt waited too long.
	punchTimeout struct {
		peer identity.NodeID
		id   uint64
	}
	// punchedConn hands the Supervisor a connection a punch made for the responder.
	punchedConn struct {
		conn transport.Conn
		kind string
	}
)

// attempt is one hole punch in progress with a peer.
type attempt struct {
	id        uint64
	proto     string
	started   time.Time
	initiator bool
	sentAt    time.Time
	vias      []identity.NodeID
	failed    []string          // why vias could not forward
	failedVia []identity.NodeID // the vias that said so
	cancel    func()            // stops the responder's punch
	plan      chan punchPlan    // initiator: where its caller waits
	contact   transport.Contact // responder: the initiator's contact
	answered  bool
	timer     *time.Timer
}

// rendezvousActor relays punch messages between neighbours (as the node both ends
// are connected to) and runs the exchange for this node's own punches. One punch per
// peer at a time; when both ends start one at once, the smaller NodeID's goes on.
type rendezvousActor struct {
	n        *node
	self     *actor.PID
	attempts map[identity.NodeID]*attempt
	buckets  map[identity.NodeID]*rate.Limiter // Relay frames per peer: Limits.RelayRate
	logged   time.Time                         // last "relay refused" log line
	refused  int
}

func newRendezvousActor(n *node) actor.Producer {
	return func() actor.Receiver {
		return &rendezvousActor{n: n, attempts: make(map[identity.NodeID]*attempt), buckets: make(map[identity.NodeID]*rate.Limiter)}
	}
}

func (r *rendezvousActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Started:
		r.self = c.PID()
	case actor.Initialized:
	case actor.Stopped:
		for _, a := range r.attempts {
			r.finish(a, punchPlan{err: ErrClosed})
		}
	case relayIn:
		r.relayIn(msg)
	case punchStart:
		r.start(msg)
	case punchCancel:
		if a := r.attempts[msg.peer]; a != nil && a.initiator && a.plan == msg.plan {
			r.drop(msg.peer, a)
		}
	case punchDone:
		if a := r.attempts[msg.peer]; a != nil && a.id == msg.id {
			r.drop(msg.peer, a)
		}
	case punchTimeout:
		if a := r.attempts[msg.peer]; a != nil && a.id == msg.id && !a.answered {
			why := "no answer from " + msg.peer.Short() + " through " + names(a.vias)
			if a.initiator {
				r.finish(a, punchPlan{err: errors.New("rendezvous: " + why)})
			} else {
				r.n.log.Debug("punch: no Sync from the initiator", "peer", msg.peer.Short())
			}
			r.drop(msg.peer, a)
		}
	}
}

// send writes a Relay to the neighbour via.
func (r *rendezvousActor) send(via identity.NodeID, m wire.Relay) {
	r.n.engine.Send(r.n.supervisorPID.Load(), relayOut{to: via, msg: m})
}

// sendBody sends body to peer through via.
func (r *rendezvousActor) sendBody(via, peer identity.NodeID, body punchBody) {
	b, err := msgpack.Marshal(body)
	if err != nil {
		r.n.log.Warn("punch: encoding a message", "err", err)
		return
	}
	r.send(via, wire.Relay{To: peer[:], Body: b})
}

// relayIn handles a Relay from the neighbour via: forward it (we are the
// rendezvous), or take it (it is for us).
func (r *rendezvousActor) relayIn(m relayIn) {
	to, err := identity.NodeIDFromBytes(m.msg.To)
	if err != nil {
		r.refuse(m.via, nil, "malformed destination")
		return
	}
	if to != r.n.self {
		r.forward(m, to)
		return
	}
	if !r.take1(m.via) { // what a neighbour relays to us is rate-limited too
		r.refused++
		return
	}
	if m.msg.Error != "" { // our rendezvous could not forward toward From
		if peer, err := identity.NodeIDFromBytes(m.msg.From); err == nil {
			r.viaFailed(m.via, peer, m.msg.Error)
		}
		return
	}
	from, err := identity.NodeIDFromBytes(m.msg.From)
	if err != nil || from == r.n.self {
		r.n.log.Debug("punch: relay without a valid origin", "via", m.via.Short())
		return
	}
	body, err := decodePunchBody(m.msg.Body)
	if err != nil {
		r.n.log.Debug("punch: bad message", "from", from.Short(), "via", m.via.Short(), "err", err)
		return
	}
	r.take(m.via, from, body)
}

// forward passes a Relay on to its destination, if both ends may talk, the
// destination is connected, and the sender is within its rate.
func (r *rendezvousActor) forward(m relayIn, to identity.NodeID) {
	switch {
	case !r.n.cfg.Policy.Allowed(m.via) || !r.n.cfg.Policy.Allowed(to):
		r.refuse(m.via, to[:], "refused")
	case !r.n.dir.connected(to):
		r.refuse(m.via, to[:], "not connected to "+to.Short())
	case !r.take1(m.via):
		r.refuse(m.via, to[:], "rate limited")
	default:
		r.send(to, wire.Relay{To: to[:], From: m.via[:], Body: m.msg.Body})
	}
}

// refuse answers a relay we did not forward (From names its destination), and logs
// at most once a second.
func (r *rendezvousActor) refuse(via identity.NodeID, to []byte, why string) {
	r.send(via, wire.Relay{To: via[:], From: to, Error: why})
	r.refused++
	if now := r.n.clock.Now(); now.Sub(r.logged) >= time.Second {
		r.n.log.Debug("relay refused", "from", via.Short(), "reason", why, "refused_since_last_log", r.refused)
		r.logged, r.refused = now, 0
	}
}

// take1 takes one token from via's bucket (Limits.RelayRate, bursts of twice that).
func (r *rendezvousActor) take1(via identity.NodeID) bool {
	rps := r.n.cfg.Limits.RelayRate
	if rps < 0 {
		return true
	}
	b := r.buckets[via]
	if b == nil {
		if len(r.buckets) > 4096 {
			clear(r.buckets) // bounded: forgetting grants a burst, nothing more
		}
		b = rate.NewLimiter(rate.Limit(rps), max(int(2*rps), 1))
		r.buckets[via] = b
	}
	if b.AllowN(r.n.clock.Now(), 1) {
		return true
	}
	r.n.refused.refuse(r.n.log, r.n.clock.Now(), RefusedRendezvousRate, "peer", via.Short(), "per_second", rps)
	return false
}

// start begins an initiator attempt.
func (r *rendezvousActor) start(m punchStart) {
	if a := r.attempts[m.peer]; a != nil && r.n.clock.Now().Sub(a.started) > 2*r.n.cfg.StepTimeout+rendezvousTimeout {
		r.drop(m.peer, a) // lost track of it: its caller is long gone
	}
	if a := r.attempts[m.peer]; a != nil {
		// One punch per peer at a time: this caller waits for the one under way
		// (the peer's, or an earlier one of ours) to connect us.
		m.plan <- punchPlan{follow: true}
		return
	}
	vias := r.vias(m.peer)
	if len(vias) == 0 {
		m.plan <- punchPlan{blind: true}
		return
	}
	a := &attempt{id: rand.Uint64(), proto: m.proto, initiator: true, sentAt: r.n.clock.Now(), vias: vias, plan: m.plan}
	r.add(m.peer, a, r.n.punchKind(m.proto, m.contact))
	contact, err := r.n.contact().MarshalBinary()
	if err != nil {
		r.finish(a, punchPlan{err: err})
		r.drop(m.peer, a)
		return
	}
	for _, via := range vias {
		r.sendBody(via, m.peer, punchBody{Kind: punchConnect, ID: a.id, Proto: m.proto, Contact: contact})
	}
	r.arm(m.peer, a)
}

// vias picks up to maxRendezvous connected peers to ask to introduce us to peer:
// our hard-coded contacts first (bootstrap nodes, which most nodes stay connected
// to, so the peer most likely is too), then the others.
func (r *rendezvousActor) vias(peer identity.NodeID) []identity.NodeID {
	var first, rest []identity.NodeID
	for _, p := range r.n.dir.Peers() {
		switch {
		case p.ID == peer:
		case r.n.hardCoded(p.ID):
			first = append(first, p.ID)
		default:
			rest = append(rest, p.ID)
		}
	}
	vias := append(first, rest...)
	return vias[:min(len(vias), maxRendezvous)]
}

// arm starts a's timeout.
func (r *rendezvousActor) arm(peer identity.NodeID, a *attempt) {
	n, self, id := r.n, r.self, a.id
	a.timer = time.AfterFunc(rendezvousTimeout, func() {
		if n.ctx.Err() == nil {
			n.engine.Send(self, punchTimeout{peer: peer, id: id})
		}
	})
}

// take handles a punch message from peer that arrived through via.
func (r *rendezvousActor) take(via, peer identity.NodeID, m punchBody) {
	a := r.attempts[peer]
	switch m.Kind {
	case punchConnect:
		r.connectFrom(via, peer, m, a)
	case punchReply:
		if a == nil || !a.initiator || a.id != m.ID || a.answered || !slices.Contains(a.vias, via) {
			return // a late answer through a second rendezvous
		}
		contact, err := peerContact(peer, m.Contact)
		if err != nil {
			r.finish(a, punchPlan{err: err})
			r.drop(peer, a)
			return
		}
		now := r.n.clock.Now()
		rtt := now.Sub(a.sentAt)
		r.sendBody(via, peer, punchBody{Kind: punchSync, ID: a.id})
		r.n.log.Debug("punch: peer answered; starting", "peer", peer.Short(), "via", via.Short(), "rtt", rtt)
		r.finish(a, punchPlan{contact: contact, start: now.Add(rtt / 2), rtt: rtt, via: via, id: a.id})
	case punchSync:
		if a == nil || a.initiator || a.id != m.ID || a.answered || !slices.Contains(a.vias, via) {
			return
		}
		a.answered = true
		if a.timer != nil {
			a.timer.Stop()
		}
		r.n.log.Debug("punch: Sync; starting", "peer", peer.Short(), "via", via.Short())
		a.cancel = r.n.startResponderPunch(peer, a.id, a.proto, a.contact)
	case punchRefuse:
		if a != nil && a.initiator && a.id == m.ID && !a.answered && slices.Contains(a.vias, via) {
			r.finish(a, punchPlan{err: fmt.Errorf("%s refused the punch: %s", peer.Short(), m.Reason)})
			r.drop(peer, a)
		}
	}
}

// connectFrom answers an initiator's Connect.
func (r *rendezvousActor) connectFrom(via, peer identity.NodeID, m punchBody, a *attempt) {
	refuse := func(why string) {
		r.sendBody(via, peer, punchBody{Kind: punchRefuse, ID: m.ID, Reason: why})
	}
	switch {
	case !r.n.cfg.Policy.Allowed(peer):
		refuse("blocked")
		return
	case m.Proto == "" || r.n.protos[m.Proto] == nil:
		refuse("protocol " + m.Proto + " is off here")
		return
	case a == nil && r.responders() >= maxResponders:
		refuse("busy: too many punches at once")
		return
	case a != nil && !a.initiator && a.id == m.ID:
		return // the same Connect through another rendezvous
	case a != nil && !a.initiator:
		// A new punch from the same peer: the old one is over for it (its Connect
		// ended), even if our side has not noticed yet.
		r.drop(peer, a)
	case a != nil && a.initiator:
		if !peer.Less(r.n.self) {
			refuse("crossing punches: " + r.n.self.Short() + " goes first")
			return
		}
		// Both started at once: the smaller NodeID's punch goes on; ours follows it.
		r.finish(a, punchPlan{follow: true})
		r.drop(peer, a)
	}
	contact, err := peerContact(peer, m.Contact)
	if err != nil {
		refuse(err.Error())
		return
	}
	ours, err := r.n.contact().MarshalBinary()
	if err != nil {
		refuse("internal error")
		return
	}
	b := &attempt{id: m.ID, proto: m.Proto, vias: []identity.NodeID{via}, contact: contact}
	r.add(peer, b, r.n.punchKind(m.Proto, contact))
	r.sendBody(via, peer, punchBody{Kind: punchReply, ID: m.ID, Contact: ours})
	r.arm(peer, b)
}

// viaFailed notes that a rendezvous could not forward our punch request to peer;
// when every one failed, the attempt falls back to punching blind.
func (r *rendezvousActor) viaFailed(via, peer identity.NodeID, why string) {
	a := r.attempts[peer]
	if a == nil || !a.initiator || a.answered || !slices.Contains(a.vias, via) || slices.Contains(a.failedVia, via) {
		return
	}
	a.failedVia = append(a.failedVia, via)
	a.failed = append(a.failed, via.Short()+": "+why)
	if len(a.failed) == len(a.vias) {
		r.n.log.Debug("punch: no rendezvous could forward; punching blind", "peer", peer.Short(), "why", strings.Join(a.failed, "; "))
		r.finish(a, punchPlan{blind: true})
		r.drop(peer, a)
	}
}

// finish answers an initiator's caller once.
func (r *rendezvousActor) finish(a *attempt, p punchPlan) {
	if a.initiator && !a.answered {
		a.answered = true
		a.plan <- p
	}
}

// add records a as the attempt with peer. From now until it is dropped, a
// connection the listener accepts from peer over a.proto counts as punched: the
// peer may be quicker than our own side of the punch.
func (r *rendezvousActor) add(peer identity.NodeID, a *attempt, kind string) {
	a.started = r.n.clock.Now()
	r.attempts[peer] = a
	r.n.punches.add(peer, a.proto, kind, 1)
}

func (r *rendezvousActor) drop(peer identity.NodeID, a *attempt) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.cancel != nil {
		a.cancel()
	}
	if r.attempts[peer] == a {
		delete(r.attempts, peer)
		r.n.punches.add(peer, a.proto, "", -1)
	}
}

// responders counts the punches we answer now.
func (r *rendezvousActor) responders() int {
	n := 0
	for _, a := range r.attempts {
		if !a.initiator {
			n++
		}
	}
	return n
}

// peerContact decodes a contact sent by peer, which must be peer's own.
func peerContact(peer identity.NodeID, b []byte) (transport.Contact, error) {
	var c transport.Contact
	if err := c.UnmarshalBinary(b); err != nil {
		return c, err
	}
	if c.ID != peer {
		return c, fmt.Errorf("the contact names %s, not the sender %s", c.ID.Short(), peer.Short())
	}
	return c, nil
}

func names(ids []identity.NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Short()
	}
	return strings.Join(s, ", ")
}
