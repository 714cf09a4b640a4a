package actors

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Bounds that keep a flood of beacon packets cheap: nodes reported to the Supervisor
// (so dialled) per second, and how many recently reported nodes are remembered so
// that a node heard again is not dialled again. Answers to queries per second are
// Limits.BeaconReplyRate.
const (
	maxBeaconReportsPerSecond = 20
	maxBeaconRecent           = 1024
	// maxBeaconBacklog bounds the nodes heard beyond the report rate that wait for
	// the next second's reports (a LAN of many nodes starting together); past it,
	// heard nodes are dropped until their next announcement.
	maxBeaconBacklog = 256
)

// beaconActor runs LAN discovery on a beacon.Conn: it queries at start, announces
// every AnnounceInterval, answers queries (rate-limited, with a packet no larger than
// the query), and reports every node it hears to the Supervisor, which connects.
type beaconActor struct {
	n          *node
	conns      []*beacon.Conn // IPv4 broadcast, IPv6 multicast
	supervisor *actor.PID
	self       beacon.Packet // our ID and ports; Type set per send
	pid        *actor.PID
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	announce   *actor.SendRepeater
	window     time.Time                       // start of the current rate window (one second)
	replies    int                             // replies sent in it
	reports    int                             // nodes reported in it
	recent     map[identity.NodeID]time.Time   // nodes reported lately, and when
	backlog    map[identity.NodeID]beaconHeard // heard beyond the report rate, to report next
	drain      *time.Timer                     // reports the backlog when the window ends
}

// beaconDrain reports the backlog once the rate window has moved on.
type beaconDrain struct{}

func newBeaconActor(n *node, conns []*beacon.Conn, supervisor *actor.PID, tcpPort, quicPort uint16) actor.Producer {
	return func() actor.Receiver {
		return &beaconActor{n: n, conns: conns, supervisor: supervisor,
			self: beacon.Packet{ID: n.self, TCPPort: tcpPort, QUICPort: quicPort}}
	}
}

func (b *beaconActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Started:
		var ctx context.Context
		ctx, b.cancel = context.WithCancel(b.n.ctx)
		pid, engine := c.PID(), c.Engine()
		b.pid = pid
		for _, conn := range b.conns {
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				err := conn.Serve(ctx, func(p beacon.Packet, from netip.AddrPort) {
					engine.Send(pid, beaconHeard{packet: p, from: from})
				})
				if ctx.Err() == nil {
					b.n.log.Warn("beacon stopped", "addr", conn.LocalAddr(), "err", err)
				}
			}()
		}
		b.send(beacon.Query) // so the LAN's nodes answer (and hear us) at once
		t := engine.SendRepeat(pid, beaconTick{}, b.n.cfg.AnnounceInterval)
		b.announce = &t
	case actor.Stopped:
		if b.announce != nil {
			b.announce.Stop()
		}
		if b.drain != nil {
			b.drain.Stop()
		}
		if b.cancel != nil {
			b.cancel()
		}
		for _, conn := range b.conns {
			conn.Close()
		}
		b.wg.Wait()
	case beaconTick:
		b.send(beacon.Announce)
	case beaconHeard:
		b.heard(c, msg)
	case beaconDrain:
		b.drain = nil
		now := b.n.clock.Now()
		b.roll(now)
		for id, m := range b.backlog {
			if b.reports >= maxBeaconReportsPerSecond {
				break
			}
			delete(b.backlog, id)
			b.report(c, m, now)
		}
		b.armDrain(now)
	}
}

// roll starts a new rate window if a second has passed.
func (b *beaconActor) roll(now time.Time) {
	if now.Sub(b.window) < time.Second {
		return
	}
	b.window, b.replies, b.reports = now, 0, 0
}

// armDrain schedules reporting the backlog at the end of the current window.
func (b *beaconActor) armDrain(now time.Time) {
	if b.drain != nil || len(b.backlog) == 0 {
		return
	}
	n, self := b.n, b.pid
	b.drain = time.AfterFunc(b.window.Add(time.Second).Sub(now), func() {
		if n.ctx.Err() == nil {
			n.engine.Send(self, beaconDrain{})
		}
	})
}

func (b *beaconActor) send(t beacon.Type) {
	p := b.self
	p.Type = t
	for _, conn := range b.conns {
		if err := conn.Send(p); err != nil {
			b.n.log.Debug("beacon send failed", "type", t, "err", err)
		}
	}
}

func (b *beaconActor) heard(c *actor.Context, m beaconHeard) {
	p := m.packet
	now := b.n.clock.Now()
	b.roll(now)
	b.report(c, m, now)
	if p.Type != beacon.Query {
		return
	}
	if rps := b.n.cfg.Limits.BeaconReplyRate; rps >= 0 && float64(b.replies) >= rps {
		b.n.refused.refuse(b.n.log, now, RefusedBeaconRate, "from", m.from, "replies_per_second", rps)
		return
	}
	b.replies++
	// By broadcast: a unicast answer to a shared port reaches one socket of the host
	// only. Without contacts a Reply is the size of the Query: no amplification.
	b.send(beacon.Reply)
}

// report tells the Supervisor about the node behind m, unless it was reported within
// the last AnnounceInterval. Beyond the report rate the node waits in the backlog
// for the next window (or, the backlog full, is dropped until it announces again).
func (b *beaconActor) report(c *actor.Context, m beaconHeard, now time.Time) {
	p := m.packet
	if at, ok := b.recent[p.ID]; ok && now.Sub(at) < b.n.cfg.AnnounceInterval {
		return
	}
	if b.reports >= maxBeaconReportsPerSecond {
		if _, queued := b.backlog[p.ID]; !queued && len(b.backlog) >= maxBeaconBacklog {
			b.n.refused.refuse(b.n.log, now, RefusedBeaconRate, "from", m.from, "backlog", maxBeaconBacklog)
			return
		}
		if b.backlog == nil {
			b.backlog = make(map[identity.NodeID]beaconHeard)
		}
		b.backlog[p.ID] = m
		b.armDrain(now)
		return
	}
	if b.recent == nil || len(b.recent) >= maxBeaconRecent {
		b.recent = make(map[identity.NodeID]time.Time)
	}
	b.recent[p.ID] = now
	b.reports++
	var contact transport.Contact
	contact.ID = p.ID
	ip := m.from.Addr()
	if p.TCPPort != 0 {
		contact.Endpoints = append(contact.Endpoints, transport.Endpoint{Proto: "tcp", Addr: netip.AddrPortFrom(ip, p.TCPPort)})
	}
	if p.QUICPort != 0 {
		contact.Endpoints = append(contact.Endpoints, transport.Endpoint{Proto: "quic", Addr: netip.AddrPortFrom(ip, p.QUICPort)})
	}
	if len(contact.Endpoints) > 0 {
		c.Send(b.supervisor, PeerSeen{Contact: contact, Via: "beacon " + p.Type.String()})
	}
}
