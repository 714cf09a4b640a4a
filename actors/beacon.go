package actors

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/transport"
)

// maxBeaconRepliesPerSecond bounds the answers to queries: a flood of queries costs
// at most this many small broadcasts a second.
const maxBeaconRepliesPerSecond = 10

// beaconActor runs LAN discovery on a beacon.Conn: it queries at start, announces
// every AnnounceInterval, answers queries (rate-limited, with a packet no larger than
// the query), and reports every node it hears to the Supervisor, which connects.
type beaconActor struct {
	n          *node
	conn       *beacon.Conn
	supervisor *actor.PID
	self       beacon.Packet // our ID and ports; Type set per send
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	announce   *actor.SendRepeater
	window     time.Time // start of the current reply-rate window
	replies    int       // replies sent in it
	refused    int       // queries not answered for the rate limit, since the last log
}

func newBeaconActor(n *node, conn *beacon.Conn, supervisor *actor.PID, tcpPort, quicPort uint16) actor.Producer {
	return func() actor.Receiver {
		return &beaconActor{n: n, conn: conn, supervisor: supervisor,
			self: beacon.Packet{ID: n.self, TCPPort: tcpPort, QUICPort: quicPort}}
	}
}

func (b *beaconActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Started:
		var ctx context.Context
		ctx, b.cancel = context.WithCancel(b.n.ctx)
		pid, engine := c.PID(), c.Engine()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			err := b.conn.Serve(ctx, func(p beacon.Packet, from netip.AddrPort) {
				engine.Send(pid, beaconHeard{packet: p, from: from})
			})
			if ctx.Err() == nil {
				b.n.log.Warn("beacon stopped", "err", err)
			}
		}()
		b.send(beacon.Query) // so the LAN's nodes answer (and hear us) at once
		t := engine.SendRepeat(pid, beaconTick{}, b.n.cfg.AnnounceInterval)
		b.announce = &t
	case actor.Stopped:
		if b.announce != nil {
			b.announce.Stop()
		}
		if b.cancel != nil {
			b.cancel()
		}
		b.conn.Close()
		b.wg.Wait()
	case beaconTick:
		b.send(beacon.Announce)
	case beaconHeard:
		b.heard(c, msg)
	}
}

func (b *beaconActor) send(t beacon.Type) {
	p := b.self
	p.Type = t
	if err := b.conn.Send(p); err != nil {
		b.n.log.Debug("beacon send failed", "type", t, "err", err)
	}
}

func (b *beaconActor) heard(c *actor.Context, m beaconHeard) {
	p := m.packet
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
	if p.Type != beacon.Query {
		return
	}
	now := b.n.clock.Now()
	if now.Sub(b.window) >= time.Second {
		if b.refused > 0 {
			b.n.log.Warn("beacon queries beyond the reply rate were not answered", "count", b.refused, "limit_per_second", maxBeaconRepliesPerSecond)
		}
		b.window, b.replies, b.refused = now, 0, 0
	}
	if b.replies >= maxBeaconRepliesPerSecond {
		b.refused++
		return
	}
	b.replies++
	// By broadcast: a unicast answer to a shared port reaches one socket of the host
	// only. Without contacts a Reply is the size of the Query: no amplification.
	b.send(beacon.Reply)
}
