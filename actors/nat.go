package actors

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/nat"
	"github.com/crust-p2p/crust/nat/stun"
	"github.com/crust-p2p/crust/nat/upnp"
	"github.com/crust-p2p/crust/transport"
)

// minRecheck bounds how often a change of our reflected address triggers a STUN
// check: peers may report a new address many times in a burst.
const minRecheck = 30 * time.Second

// upnpCloseTimeout bounds deleting the UPnP mappings when the node stops.
const upnpCloseTimeout = 3 * time.Second

// NATInfo is what the node knows of the NAT in front of it.
type NATInfo struct {
	// Behavior is the NAT's mapping behaviour from STUN: "endpoint-independent",
	// "endpoint-dependent" (symmetric), "no-nat" or "unknown".
	Behavior string
	// STUN are our external endpoints as STUN servers saw them: the QUIC socket's
	// (proto "quic") and the TCP listen port's. Empty without STUN servers. With an
	// endpoint-dependent NAT no peer can reach them: they give our external address
	// and a base for port prediction (nat.Mapping.Hint).
	STUN []transport.Endpoint
	// UPnP are the port mappings on the LAN's gateway.
	UPnP []transport.Endpoint
	// ExternalIP is the gateway's external address, if a gateway answered.
	ExternalIP netip.Addr
	// Errors say what failed in the last STUN check, one line per server.
	Errors []string
	// Checked is when STUN was last asked; zero if never.
	Checked time.Time
}

// natActor owns NAT traversal state: it asks STUN servers (at start, every
// NATRecheck, and when peers start seeing us at a new address) and keeps the UPnP
// mappings, publishing NATInfo for Contact and the admin API.
type natActor struct {
	n         *node
	self      *actor.PID
	info      NATInfo
	checking  bool
	lastCheck time.Time
	repeater  *actor.SendRepeater
	mapper    *upnp.Mapper
	mapperRun chan struct{} // closed when mapper.Run returns
}

type (
	// natRecheck is the periodic STUN check.
	natRecheck struct{}
	// externalChanged says a peer saw us at an address not seen before.
	externalChanged struct{}
	// natReport carries a finished STUN check.
	natReport struct{ report nat.Report }
	// natMapped carries the UPnP mappings in place.
	natMapped struct{ mappings []upnp.Mapping }
)

func newNATActor(n *node) actor.Producer {
	return func() actor.Receiver { return &natActor{n: n, info: NATInfo{Behavior: string(stun.Unknown)}} }
}

func (a *natActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Initialized:
	case actor.Started:
		a.self = c.PID()
		a.publish()
		if a.n.cfg.Prober != nil {
			a.check()
			r := c.Engine().SendRepeat(c.PID(), natRecheck{}, a.n.cfg.NATRecheck)
			a.repeater = &r
		}
		if a.n.cfg.UPnP != nil {
			a.startUPnP()
		}
	case natRecheck:
		a.check()
	case externalChanged:
		if a.n.clock.Now().Sub(a.lastCheck) >= minRecheck {
			a.n.log.Info("nat: peers see us at a new address; asking STUN again")
			a.check()
		}
	case natReport:
		a.checking = false
		a.noteReport(msg.report)
	case natMapped:
		a.noteMappings(msg.mappings)
	case actor.Stopped:
		a.stop()
	}
}

// check starts a STUN check unless one is running.
func (a *natActor) check() {
	p := a.n.cfg.Prober
	if p == nil || a.checking {
		return
	}
	a.checking, a.lastCheck = true, a.n.clock.Now()
	n, self := a.n, a.self
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		defer cancel()
		report := p.Check(ctx)
		if n.ctx.Err() == nil {
			n.engine.Send(self, natReport{report: report})
		}
	})
}

func (a *natActor) noteReport(r nat.Report) {
	var eps []transport.Endpoint
	for _, m := range []struct {
		proto  string
		mapped netip.AddrPort
	}{{"tcp", r.TCP.Hint()}, {"quic", r.UDP.Hint()}} {
		if m.mapped.IsValid() {
			eps = append(eps, transport.Endpoint{Proto: m.proto, Addr: m.mapped})
		}
	}
	behavior := string(r.Behavior())
	errs := append(slices.Clone(r.UDP.Errors), r.TCP.Errors...)
	if behavior != a.info.Behavior || !slices.Equal(eps, a.info.STUN) {
		a.n.log.Info("nat: STUN check", "behavior", behavior, "external", eps, "errors", len(errs))
	}
	for _, e := range errs {
		a.n.log.Warn("nat: STUN server failed", "err", e)
	}
	a.info.Behavior, a.info.STUN, a.info.Errors, a.info.Checked = behavior, eps, errs, r.At
	a.publish()
}

func (a *natActor) noteMappings(ms []upnp.Mapping) {
	var eps []transport.Endpoint
	var ext netip.Addr
	for _, m := range ms {
		proto := m.Proto
		if proto == "udp" {
			proto = "quic"
		}
		eps = append(eps, transport.Endpoint{Proto: proto, Addr: m.External})
		ext = m.External.Addr()
	}
	a.n.log.Info("nat: UPnP mappings", "mapped", eps)
	a.info.UPnP, a.info.ExternalIP = eps, ext
	a.publish()
}

func (a *natActor) publish() {
	info := a.info
	info.STUN, info.UPnP, info.Errors = slices.Clone(info.STUN), slices.Clone(info.UPnP), slices.Clone(info.Errors)
	a.n.nat.Store(&info)
}

// startUPnP runs the Mapper for our listen ports until the actor stops.
func (a *natActor) startUPnP() {
	n, self := a.n, a.self
	m, err := upnp.NewMapper(*n.cfg.UPnP, n.cfg.UPnPWant, func(ms []upnp.Mapping) {
		n.engine.Send(self, natMapped{mappings: ms})
	})
	if err != nil {
		n.log.Warn("nat: UPnP off", "err", err)
		return
	}
	a.mapper, a.mapperRun = m, make(chan struct{})
	done := a.mapperRun
	go func() {
		defer close(done)
		m.Run(context.Background()) // ended by Close at stop
	}()
}

// stop deletes the UPnP mappings (bounded) and stops the timers.
func (a *natActor) stop() {
	if a.repeater != nil {
		a.repeater.Stop()
	}
	if a.mapper != nil {
		ctx, cancel := context.WithTimeout(context.Background(), upnpCloseTimeout)
		if err := a.mapper.Close(ctx); err != nil {
			a.n.log.Warn("nat: deleting the UPnP mappings failed", "err", err)
		}
		cancel()
		<-a.mapperRun
	}
}
