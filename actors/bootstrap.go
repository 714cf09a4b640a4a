package actors

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/bootstrap"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// bootstrapActor owns the bootstrap cache (if there is none, it only dials the
// hard-coded contacts). At start it dials the cache's contacts
// (hard-coded first, then learned ones by rank), BootstrapParallel at a time, until
// BootstrapPeers peers are connected or every contact was tried: Crust's bootstrap.
// Until one hard-coded contact is connected, other peers (the LAN's, from the beacon)
// do not count as enough. Rounds are retried for the contacts that failed (see
// bootstrapRetryMin).
// Afterwards it records how direct connections went, learns contacts heard of, and
// saves the cache a moment after each change (SaveDelay), so a burst of changes costs
// one write. A save that fails (a full disk, say) is retried on a timer, backing off
// (see saveRetryMax), until one succeeds.
type bootstrapActor struct {
	n          *node
	cache      *bootstrap.Cache
	supervisor *actor.PID
	self       *actor.PID

	todo      []transport.Contact
	inFlight  int
	connected int  // bootstrap dials that succeeded
	done      bool // every contact tried, or enough peers
	// saveTimer is the save to come: SaveDelay after a change, or a retry.
	saveTimer *time.Timer
	// saveFailures counts the saves in a row that failed. While it is above zero the
	// next save is a retry that changes do not bring forward.
	saveFailures int
	// retry starts another round when a round ends short of BootstrapPeers with
	// contacts that failed (down, overloaded, cut off), or a recheck finds us short;
	// failed counts this round's failed contacts, retries the rounds in a row that
	// had some, for the backoff.
	retry      *time.Timer
	failed     int
	hardFailed int // of them hard-coded
	retries    int
}

// Bootstrap retry: a round that ends with no hard-coded contact connected (one of
// them having failed), or short of BootstrapPeers with contacts that failed, is
// followed by another after bootstrapRetryMin, doubling up to
// bootstrapRetryMax (with jitter, so nodes that failed together do not return
// together); it dials only the contacts not connected. Otherwise the node rechecks
// every bootstrapRetryMax that it still has enough peers, one of them hard-coded (a
// partition may have taken them).
const (
	bootstrapRetryMin = time.Second
	bootstrapRetryMax = 30 * time.Second
)

type bootstrapRetry struct{}

// saveRetryMax caps the wait before retrying a failed save: the first retry comes
// SaveDelay after the failure, each next one twice as long after its own, up to
// this (or SaveDelay, if that is longer). Each failure is logged, so a lasting one
// (a full disk) logs at most once per step of the backoff.
const saveRetryMax = time.Minute

// connOutcome reports to the Bootstrap actor how a direct connection went: success
// with the peer's endpoints, or a failed dial.
type connOutcome struct {
	contact transport.Contact
	ok      bool
	// learnOnly: the peer reached us (inbound), so its endpoints are learned
	// without counting as a success of ours.
	learnOnly bool
	at        time.Time
}

// bootstrapDialed reports the end of one bootstrap dial.
type bootstrapDialed struct {
	id  identity.NodeID
	err error
}

// contactsHeard hands the Bootstrap actor contacts learned by other means (the LAN
// beacon).
type contactsHeard struct{ contacts []transport.Contact }

// saveTick asks the Bootstrap actor to save the cache.
type saveTick struct{}

func newBootstrapActor(n *node, cache *bootstrap.Cache, supervisor *actor.PID) actor.Producer {
	return func() actor.Receiver {
		return &bootstrapActor{n: n, cache: cache, supervisor: supervisor}
	}
}

func (b *bootstrapActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Initialized:
	case actor.Started:
		b.self = c.PID()
		b.round(c)
	case bootstrapRetry:
		b.retry = nil
		if b.n.dir.count() >= b.n.cfg.BootstrapPeers && b.hardCodedReached() {
			b.retries = 0
			b.scheduleRetry()
			return
		}
		b.round(c)
	case bootstrapDialed:
		b.inFlight--
		switch {
		case msg.err == nil:
			b.connected++
			b.n.log.Debug("bootstrap: connected", "peer", msg.id.Short())
		case errors.Is(msg.err, ErrClosed):
			b.todo = nil
		default:
			b.failed++
			if b.n.hardCoded(msg.id) {
				b.hardFailed++
			}
			b.n.log.Debug("bootstrap: contact failed", "peer", msg.id.Short(), "err", msg.err)
		}
		b.next(c)
	case connOutcome:
		if b.cache == nil {
			return
		}
		switch {
		case msg.learnOnly:
			b.cache.Add(msg.contact)
		case msg.ok:
			b.cache.RecordSuccess(msg.contact, msg.at)
		default:
			b.cache.RecordFailure(msg.contact.ID, msg.at)
		}
		b.saveSoon()
	case contactsHeard:
		if b.cache == nil {
			return
		}
		b.cache.Add(msg.contacts...)
		b.saveSoon()
	case saveTick:
		b.saveTimer = nil
		b.save()
	case actor.Stopped:
		if b.saveTimer != nil {
			b.saveTimer.Stop()
		}
		if b.retry != nil {
			b.retry.Stop()
		}
	}
}

// next starts dials while there is room, contacts are left, and not enough peers are
// connected.
func (b *bootstrapActor) next(c *actor.Context) {
	for b.inFlight < b.n.cfg.BootstrapParallel && len(b.todo) > 0 {
		ct := b.todo[0]
		// Enough peers end the round once one of them is a hard-coded contact: peers
		// found on the LAN (the beacon) do not join us to the wider network.
		if b.n.dir.count() >= b.n.cfg.BootstrapPeers && b.hardCodedReached() {
			b.n.log.Info("bootstrap: enough peers connected", "peers", b.n.dir.count(), "untried", len(b.todo))
			b.todo = nil
			break
		}
		b.todo = b.todo[1:]
		if b.n.dir.connected(ct.ID) {
			continue
		}
		b.inFlight++
		res := make(chan error, 1)
		c.Send(b.supervisor, ConnectPeer{Contact: ct, Result: res})
		n, self, id := b.n, b.self, ct.ID
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			select {
			case err := <-res:
				n.engine.Send(self, bootstrapDialed{id: id, err: err})
			case <-n.ctx.Done():
			}
		}()
	}
	if b.inFlight == 0 && len(b.todo) == 0 && !b.done {
		b.done = true
		b.n.log.Info("bootstrap: done", "connected", b.connected, "failed", b.failed, "peers", b.n.dir.count())
		if b.hardFailed > 0 && !b.hardCodedReached() || b.failed > 0 && b.n.dir.count() < b.n.cfg.BootstrapPeers {
			b.retries++
		} else {
			b.retries = 0
		}
		b.scheduleRetry()
	}
}

// hardCoded reports whether id is one of the configured contacts (the bootstrap
// nodes, which the rendezvous also asks first).
func (n *node) hardCoded(id identity.NodeID) bool {
	return slices.ContainsFunc(n.cfg.Contacts, func(c transport.Contact) bool { return c.ID == id })
}

// hardCodedReached reports whether one of the configured contacts is connected, or
// there are none (none allowed, or only us).
func (b *bootstrapActor) hardCodedReached() bool {
	some := false
	for _, c := range b.n.cfg.Contacts {
		if c.ID == b.n.self || !b.n.cfg.Policy.Allowed(c.ID) {
			continue
		}
		if b.n.dir.connected(c.ID) {
			return true
		}
		some = true
	}
	return !some
}

// round starts a round of dials to every contact (the hard-coded ones first).
func (b *bootstrapActor) round(c *actor.Context) {
	contacts := b.n.cfg.Contacts
	if b.cache != nil {
		contacts = b.cache.Contacts(0)
	}
	b.todo, b.done, b.connected, b.failed, b.hardFailed = nil, false, 0, 0, 0
	for _, ct := range contacts {
		if ct.ID != b.n.self && b.n.cfg.Policy.Allowed(ct.ID) {
			b.todo = append(b.todo, ct)
		}
	}
	b.n.log.Info("bootstrap: starting", "contacts", len(b.todo), "parallel", b.n.cfg.BootstrapParallel, "enough", b.n.cfg.BootstrapPeers, "round", b.retries+1)
	b.next(c)
}

// scheduleRetry arms the next round or check: soon (backing off) after a round with
// failures, else after bootstrapRetryMax.
func (b *bootstrapActor) scheduleRetry() {
	if b.retry != nil || b.n.ctx.Err() != nil {
		return
	}
	delay := bootstrapRetryMax
	if b.retries > 0 {
		delay = min(bootstrapRetryMax, bootstrapRetryMin<<min(b.retries-1, 16))
		if b.n.dir.count() == 0 {
			b.n.log.Warn("bootstrap: no peer connected; trying the contacts again", "in", delay, "round", b.retries+1)
		}
	}
	delay = delay * time.Duration(80+rand.IntN(41)) / 100 // ±20%
	n, self := b.n, b.self
	b.retry = time.AfterFunc(delay, func() {
		if n.ctx.Err() == nil {
			n.engine.Send(self, bootstrapRetry{})
		}
	})
}

// saveSoon schedules a save SaveDelay from now unless one is scheduled already
// (after a failure, the retry).
func (b *bootstrapActor) saveSoon() {
	if b.saveTimer != nil || !b.cache.Dirty() {
		return
	}
	b.saveIn(b.n.cfg.SaveDelay)
}

// saveIn schedules a save d from now.
func (b *bootstrapActor) saveIn(d time.Duration) {
	n, self := b.n, b.self
	b.saveTimer = time.AfterFunc(d, func() {
		if n.ctx.Err() == nil {
			n.engine.Send(self, saveTick{})
		}
	})
}

// save writes the cache. A failure is logged and, while the cache has something to
// save, retried after saveRetryDelay; the first success after failures is logged
// too.
func (b *bootstrapActor) save() {
	err := b.cache.Save()
	if err == nil {
		if b.saveFailures > 0 {
			b.n.log.Info("bootstrap: saving the cache works again", "file", b.cache.Path(), "failed_saves", b.saveFailures)
			b.saveFailures = 0
		}
		return
	}
	b.saveFailures++
	if !b.cache.Dirty() || errors.Is(err, bootstrap.ErrClosed) {
		// Nothing left unsaved, or the cache is closed: no retry.
		b.n.log.Warn("bootstrap: saving the cache failed", "file", b.cache.Path(), "err", err)
		return
	}
	delay := b.saveRetryDelay()
	b.n.log.Warn("bootstrap: saving the cache failed; retrying", "file", b.cache.Path(), "err", err, "in", delay, "failed_saves", b.saveFailures)
	b.saveIn(delay)
}

// saveRetryDelay is how long to wait after the saveFailures-th failed save in a row:
// SaveDelay, doubling with each failure, up to saveRetryMax.
func (b *bootstrapActor) saveRetryDelay() time.Duration {
	limit := max(saveRetryMax, b.n.cfg.SaveDelay)
	d := b.n.cfg.SaveDelay
	for i := 1; i < b.saveFailures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// sessionOutcome is what a new session tells the Bootstrap actor: for a connection we
// dialled directly, a success at the endpoint dialled and the endpoints the peer
// lists in its Hello; for one the peer dialled, or a punched one (its address is a
// NAT mapping, not where to dial next time), only those endpoints, learned.
func sessionOutcome(conn transport.Conn, kind string, at time.Time) connOutcome {
	ct := transport.Contact{ID: conn.PeerID()}
	direct := conn.Outbound() && !strings.HasSuffix(kind, "-punch")
	if direct {
		if ep, err := transport.ParseEndpoint(conn.Proto() + "://" + transport.AddrPortOf(conn.RemoteAddr()).String()); err == nil {
			ct.Endpoints = append(ct.Endpoints, ep)
		}
	}
	if h := conn.PeerHello(); h != nil {
		for _, s := range h.Endpoints {
			if len(ct.Endpoints) >= transport.MaxContactEndpoints {
				break
			}
			if ep, err := transport.ParseEndpoint(s); err == nil && !slices.Contains(ct.Endpoints, ep) {
				ct.Endpoints = append(ct.Endpoints, ep)
			}
		}
	}
	return connOutcome{contact: ct, ok: direct, learnOnly: !direct, at: at}
}
