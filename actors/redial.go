package actors

import (
	"math/rand/v2"
	"time"
)

// Reconnecting after a loss without a Goodbye (a timeout, a reset, a broken
// connection: a network fault rather than the peer leaving): the peer actor redials
// for Config.ReconnectFor, waiting redialFirst between attempts at first, doubling
// up to redialMax, each wait ±20 % so that many peers lost at once do not redial in
// step. A connection from the peer, a Disconnect or a block ends it.
const (
	redialFirst = 500 * time.Millisecond
	redialMax   = 30 * time.Second
)

// redialTick starts the next reconnect attempt.
type redialTick struct{ gen int }

// redialing reports whether the actor is trying to reconnect.
func (p *peer) redialing() bool { return !p.redialUntil.IsZero() }

// startRedial begins reconnecting to a peer lost without a Goodbye on cs, if the
// node reconnects at all and knows where to dial.
func (p *peer) startRedial(cs *connState) {
	if p.n.cfg.ReconnectFor < 0 || p.leaving != "" || p.n.ctx.Err() != nil || !p.n.cfg.Policy.Allowed(p.id) {
		return
	}
	contact := p.contact
	if len(contact.Endpoints)+len(contact.UPnP)+len(contact.Reflected) == 0 {
		// Accepted, not dialled: where the peer said it listens (its Hello).
		contact = sessionOutcome(cs.conn, cs.kind, p.n.clock.Now()).contact
	}
	if len(contact.Endpoints)+len(contact.UPnP)+len(contact.Reflected) == 0 {
		return
	}
	p.contact = contact
	p.redialUntil = p.n.clock.Now().Add(p.n.cfg.ReconnectFor)
	p.redialWait = redialFirst
	p.n.log.Info("reconnecting", "peer", p.id.Short(), "for", p.n.cfg.ReconnectFor)
	p.scheduleRedial()
}

// scheduleRedial arms the next attempt, or gives up once ReconnectFor has passed.
func (p *peer) scheduleRedial() {
	if !p.redialing() {
		return
	}
	if !p.n.clock.Now().Before(p.redialUntil) {
		p.n.log.Info("gave up reconnecting", "peer", p.id.Short(), "after", p.n.cfg.ReconnectFor, "err", p.lastErr)
		p.stopRedial()
		return
	}
	wait := time.Duration(float64(p.redialWait) * (0.8 + 0.4*rand.Float64()))
	p.redialWait = min(2*p.redialWait, redialMax)
	p.redialGen++
	n, pid, gen := p.n, p.pid, p.redialGen
	p.redialTimer = time.AfterFunc(wait, func() {
		if n.ctx.Err() == nil {
			n.engine.Send(pid, redialTick{gen: gen})
		}
	})
}

// stopRedial ends reconnecting; messages held for a resume come back.
func (p *peer) stopRedial() {
	p.releaseHeld()
	if p.redialTimer != nil {
		p.redialTimer.Stop()
		p.redialTimer = nil
	}
	p.redialUntil = time.Time{}
	p.redialGen++
}

// redial runs one reconnect attempt, unless the peer is back or being dialled.
func (p *peer) redial(m redialTick, dial func()) {
	switch {
	case m.gen != p.redialGen || !p.redialing():
	case p.connected || p.leaving != "" || !p.n.cfg.Policy.Allowed(p.id):
		p.stopRedial()
	case p.dialing || p.awaitingActivate():
		p.scheduleRedial()
	default:
		dial()
	}
}

// awaitingActivate reports whether a connection waits for the peer's Activate:
// another dial now would only make a duplicate.
func (p *peer) awaitingActivate() bool {
	for cs := range p.conns {
		if !cs.awaitingAct.IsZero() && !cs.sentBye && !cs.closed {
			return true
		}
	}
	return false
}
