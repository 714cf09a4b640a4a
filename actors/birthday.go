package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// The birthday punch, for a QUIC punch between an endpoint-dependent (symmetric) NAT
// and an endpoint-independent one or none: the symmetric side keeps birthdaySockets
// mappings toward the peer open, the other side sends punch packets to
// birthdayProbes random ports of its address, birthdayBatch every punchInterval. The
// chance that no probe meets a mapping is (1 − 128/64512)^4096 ≈ 0.0003. The split
// favours probes: a probe costs the other side one datagram, a socket costs the
// symmetric side's NAT a port for minutes, and that NAT may serve many hosts.
const (
	birthdaySockets = 128
	birthdayProbes  = 4096
	birthdayBatch   = 512
	// birthdayLowPort is the lowest port a NAT hands out that we probe.
	birthdayLowPort = 1024
	// birthdaysPerWindow birthday punches may start per birthdayWindow: each holds
	// birthdaySockets of our NAT's ports until its mappings time out (minutes), and a
	// NAT shared by dozens of hosts runs out of ports otherwise (the simulator's scale
	// run did: 44,000 datagrams dropped for want of a port, at 256 sockets a punch
	// and no limit).
	birthdaysPerWindow = 16
	birthdayWindow     = time.Minute
	// birthdaysAtOnce bounds the birthday punches running at once. A node that
	// connects to several peers at its start needs several; one at a time, most
	// timed out waiting for their turn (the simulator's scale run with LANs: the
	// window, not this, is what keeps the NAT's ports).
	birthdaysAtOnce = 4
)

// birthdayBudget admits birthday punches: birthdaysAtOnce at a time, at most
// birthdaysPerWindow per birthdayWindow.
type birthdayBudget struct {
	turn    chan struct{} // a slot held by each running one
	mu      sync.Mutex
	started []time.Time // within the window, oldest first
}

func newBirthdayBudget() *birthdayBudget {
	return &birthdayBudget{turn: make(chan struct{}, birthdaysAtOnce)}
}

// take waits for a turn (birthdaysAtOnce run at once), then admits one if the window
// allows it; release ends it. It fails when ctx ends first or the window is spent.
func (b *birthdayBudget) take(ctx context.Context, now func() time.Time) error {
	select {
	case b.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("birthday punch: another one ran all the time: %w", context.Cause(ctx))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now()
	for len(b.started) > 0 && t.Sub(b.started[0]) >= birthdayWindow {
		b.started = b.started[1:]
	}
	if len(b.started) >= birthdaysPerWindow {
		<-b.turn
		return fmt.Errorf("birthday punch: %d started in the last %v already; not spending more of our NAT's ports", len(b.started), birthdayWindow)
	}
	b.started = append(b.started, t)
	return nil
}

func (b *birthdayBudget) release() { <-b.turn }

// BirthdayDialer is a UDPPuncher that can also do the symmetric side of a birthday
// punch (transport.QUIC.BirthdayDial).
type BirthdayDialer interface {
	BirthdayDial(ctx context.Context, raddr netip.AddrPort, want identity.NodeID, sockets int, interval time.Duration) (transport.Conn, error)
}

// birthdayRole is our part in a QUIC punch with a peer of contact c: "dial" when our
// NAT is endpoint-dependent and the peer's is not, "spray" the other way round, ""
// when the birthday punch has no use (both endpoint-independent: the plain punch
// works; both symmetric: too many combinations) or a side is unknown.
func (n *node) birthdayRole(c transport.Contact) string {
	easy := func(b string) bool { return b == "endpoint-independent" || b == "no-nat" }
	ours := n.natBehavior()
	switch {
	case ours == "endpoint-dependent" && easy(c.NAT):
		if _, ok := n.cfg.PunchUDP.(BirthdayDialer); ok {
			return "dial"
		}
	case c.NAT == "endpoint-dependent" && easy(ours):
		return "spray"
	}
	return ""
}

// punchBirthdayDial runs the symmetric side: the birthday punch toward the peer's
// first QUIC target, beside the plain punch (which a NAT that assigns ports in
// sequence lets through); the first connection wins. Birthday punches are rationed
// (birthdayBudget): each holds 128 sockets, and 128 of our NAT's ports for its
// mapping timeout.
func (n *node) punchBirthdayDial(ctx context.Context, targets []netip.AddrPort, c transport.Contact) (transport.Conn, error) {
	bd := n.cfg.PunchUDP.(BirthdayDialer)
	won, errs := raceConns(ctx,
		func(ctx context.Context) (transport.Conn, error) {
			if err := n.birthdays.take(ctx, n.clock.Now); err != nil {
				return nil, err
			}
			defer n.birthdays.release()
			return bd.BirthdayDial(ctx, targets[0], c.ID, birthdaySockets, punchInterval)
		},
		func(ctx context.Context) (transport.Conn, error) { return n.punchQUIC(ctx, targets, c, false) },
	)
	if won != nil {
		return won, nil
	}
	return nil, errors.Join(errs...)
}

// punchBirthdaySpray runs the endpoint-independent side: probes to random ports of
// the peer's address from our QUIC socket, beside the plain punch; the peer's
// connection comes in through our listener.
func (n *node) punchBirthdaySpray(ctx context.Context, targets []netip.AddrPort, c transport.Contact) (transport.Conn, error) {
	addr, ok := sprayAddr(c)
	if !ok {
		return nil, fmt.Errorf("birthday punch: no address of %s to probe", c.ID.Short())
	}
	n.wg.Go(func() { n.spray(ctx, addr) })
	if len(targets) == 0 {
		<-ctx.Done()
		return nil, fmt.Errorf("birthday punch: probed %d ports of %v; the peer's connection did not come: %w", birthdayProbes, addr, context.Cause(ctx))
	}
	return n.punchQUIC(ctx, targets, c, false)
}

// sprayAddr is the address of c to probe: that of its first reflected or public
// endpoint of any protocol (an endpoint-dependent NAT has one address, whatever
// port each flow gets).
func sprayAddr(c transport.Contact) (netip.Addr, bool) {
	for _, group := range [][]transport.Endpoint{c.Reflected, c.Public()} {
		for _, ep := range group {
			if a := ep.Addr.Addr(); ep.Addr.IsValid() && !a.IsUnspecified() && !a.IsMulticast() {
				return a.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

// spray sends punch packets from our QUIC socket to birthdayProbes distinct random
// ports of addr, birthdayBatch every punchInterval, or until ctx ends.
func (n *node) spray(ctx context.Context, addr netip.Addr) {
	tried := make(map[uint16]bool, birthdayProbes)
	tick := time.NewTicker(punchInterval)
	defer tick.Stop()
	for len(tried) < birthdayProbes {
		for batch := 0; batch < birthdayBatch && len(tried) < birthdayProbes; {
			port := uint16(birthdayLowPort + rand.N(65536-birthdayLowPort))
			if tried[port] {
				continue
			}
			tried[port] = true
			batch++
			_ = n.cfg.PunchUDP.Punch(netip.AddrPortFrom(addr, port))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	n.log.Debug("birthday punch: probes sent", "to", addr, "ports", len(tried))
}
