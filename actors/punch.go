package actors

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Punch timing.
const (
	// punchInterval is how often QUIC punch packets are sent while punching.
	punchInterval = 100 * time.Millisecond
	// maxPunchTargets bounds the endpoints punched toward per protocol.
	maxPunchTargets = 4
	// predictedPorts is how many ports after each target are also tried toward an
	// endpoint-dependent NAT (one that allocates ports in sequence gives the next
	// ones; a random one defeats this, and the step then fails with its reason).
	predictedPorts = 8
)

// TCPPuncher is the TCP transport's hole punch: a connect from our listen port to
// the peer's mapped endpoint while the peer does the same (simultaneous open) or
// accepts, roles settled before TLS.
type TCPPuncher interface {
	PunchDial(ctx context.Context, raddr netip.AddrPort, want identity.NodeID) (transport.Conn, error)
}

// UDPPuncher sends punch datagrams from the QUIC socket: full ones, and hop-limited
// ones that prime our own NAT or firewall without reaching the peer's router.
type UDPPuncher interface {
	Punch(raddr netip.AddrPort) error
	OpenFirewall(raddr netip.AddrPort, hops int) error
}

// errPunchedByPeer ends a punch step whose peer connected us meanwhile: the
// connection is there, made by the other side.
var errPunchedByPeer = errors.New("connected by the peer's side of the punch")

// punching records the punches in progress by peer and protocol, with the kind of
// connection they make, so that a connection the listener accepts meanwhile counts
// as punched.
type punching struct {
	mu  sync.Mutex
	set map[identity.NodeID]map[string]*punchCount
	// watches are the QUIC punches in progress, told of their peers' punch packets
	// (a router may have given the peer another port than the one we punch toward).
	watches map[*punchWatch]struct{}
}

// punchWatch is one QUIC punch's interest in the punch packets of its peer.
type punchWatch struct {
	peer identity.NodeID
	seen chan netip.AddrPort
}

// maxLearnedTargets bounds the endpoints a QUIC punch adds from the punch packets
// it receives.
const maxLearnedTargets = 4

// watch registers a QUIC punch toward peer for the punch packets that name peer;
// unwatch ends it.
func (p *punching) watch(peer identity.NodeID) *punchWatch {
	w := &punchWatch{peer: peer, seen: make(chan netip.AddrPort, maxLearnedTargets)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watches == nil {
		p.watches = make(map[*punchWatch]struct{})
	}
	p.watches[w] = struct{}{}
	return w
}

func (p *punching) unwatch(w *punchWatch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.watches, w)
}

// seen passes the source of a punch packet that names id to the punches toward id.
func (p *punching) seen(from netip.AddrPort, id identity.NodeID) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.watches {
		if w.peer == id {
			select {
			case w.seen <- from:
			default: // that punch has enough to do
			}
		}
	}
}

// targetSet is a QUIC punch's targets, to which the punch packets it receives add.
type targetSet struct {
	mu      sync.Mutex
	list    []netip.AddrPort
	learned int
}

// add adds ap unless known or maxLearnedTargets were added; it reports whether it did.
func (s *targetSet) add(ap netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.learned >= maxLearnedTargets || slices.Contains(s.list, ap) {
		return false
	}
	s.list = append(s.list, ap)
	s.learned++
	return true
}

func (s *targetSet) snapshot() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

type punchCount struct {
	n    int
	kind string
}

// add counts a punch with id over proto in (delta 1, kind the connection kind) or
// out (delta -1).
func (p *punching) add(id identity.NodeID, proto, kind string, delta int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set == nil {
		p.set = make(map[identity.NodeID]map[string]*punchCount)
	}
	m := p.set[id]
	if m == nil {
		m = make(map[string]*punchCount)
		p.set[id] = m
	}
	c := m[proto]
	if c == nil {
		c = &punchCount{}
		m[proto] = c
	}
	c.n += delta
	if kind != "" {
		c.kind = kind
	}
	if c.n <= 0 {
		delete(m, proto)
	}
	if len(m) == 0 {
		delete(p.set, id)
	}
}

// kind returns the kind of the punch with id over proto in progress, or "".
func (p *punching) kind(id identity.NodeID, proto string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.set[id][proto]; c != nil {
		return c.kind
	}
	return ""
}

// inboundKind is the kind of an accepted connection: punched if a punch with its
// peer over its protocol is in progress.
func (n *node) inboundKind(c transport.Conn) string {
	if k := n.punches.kind(c.PeerID(), c.Proto()); k != "" {
		return k
	}
	return c.Proto() + "-direct"
}

// punchKind names a punched connection to peer over proto: "firewall-punch" for TCP
// where one side has no NAT (STUN saw its own address: at most a stateful firewall
// stands in the way, opened by our hop-limited SYN), else proto + "-punch".
func (n *node) punchKind(proto string, peer transport.Contact) string {
	if proto == "tcp" && (peer.NAT == "no-nat" || n.natBehavior() == "no-nat") {
		return "firewall-punch"
	}
	return proto + "-punch"
}

// natBehavior is our NAT's mapping behaviour as STUN told it, or "unknown".
func (n *node) natBehavior() string {
	if p := n.nat.Load(); p != nil {
		return p.Behavior
	}
	return "unknown"
}

// nodePuncher is the ladder's Puncher: rendezvous through a connected peer, then
// the punch itself.
type nodePuncher struct{ n *node }

// Punch implements Puncher.
func (p nodePuncher) Punch(ctx context.Context, proto string, c transport.Contact) (transport.Conn, error) {
	n := p.n
	if !n.canPunch(proto) {
		return nil, fmt.Errorf("no %s hole punching here", proto)
	}
	pid := n.rendezvousPID.Load()
	if pid == nil {
		return nil, ErrClosed
	}
	planCh := make(chan punchPlan, 1)
	n.engine.Send(pid, punchStart{peer: c.ID, proto: proto, contact: c, plan: planCh})
	var plan punchPlan
	select {
	case plan = <-planCh:
	case <-ctx.Done():
		n.engine.Send(pid, punchCancel{peer: c.ID, plan: planCh})
		return nil, fmt.Errorf("rendezvous: %w", context.Cause(ctx))
	}
	switch {
	case plan.err != nil:
		return nil, plan.err
	case plan.follow:
		// The peer's punch goes first; it connects us, or this step times out.
		n.punches.add(c.ID, proto, n.punchKind(proto, c), 1)
		defer n.punches.add(c.ID, proto, "", -1)
		if err := n.dir.waitConnected(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("waiting for the peer's punch: %w", err)
		}
		return nil, errPunchedByPeer
	case plan.blind:
		n.log.Debug("punch: no rendezvous; punching toward the contact as given", "peer", c.ID.Short(), "proto", proto)
		plan.contact = c
	default:
		defer n.engine.Send(pid, punchDone{peer: c.ID, id: plan.id})
		wait := time.NewTimer(plan.start.Sub(n.clock.Now()))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return nil, context.Cause(ctx)
		}
	}
	return n.runPunch(ctx, proto, plan.contact, plan.blind)
}

// canPunch reports whether proto has its punch primitive here.
func (n *node) canPunch(proto string) bool {
	switch proto {
	case "tcp":
		return n.cfg.PunchTCP != nil
	case "quic":
		return n.cfg.PunchUDP != nil && n.protos["quic"] != nil
	}
	return false
}

// startResponderPunch runs the responder's side of an agreed punch and hands what
// it connects to the Supervisor; the returned func stops it. It runs with the dials
// (Close waits for them before the actors stop, so what it connects is not lost).
func (n *node) startResponderPunch(peer identity.NodeID, id uint64, proto string, contact transport.Contact) func() {
	sup, rv := n.supervisorPID.Load(), n.rendezvousPID.Load()
	if sup == nil || rv == nil {
		return func() {}
	}
	n.stats.attempt(proto + "-punch")
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.StepTimeout)
	n.dialWG.Go(func() {
		defer cancel()
		var conn transport.Conn
		err := lagBehindInitiator(ctx, proto)
		if err == nil {
			conn, err = n.runPunch(ctx, proto, contact, false)
		}
		n.engine.Send(rv, punchDone{peer: peer, id: id})
		switch {
		case err == nil && n.ctx.Err() == nil:
			n.engine.Send(sup, punchedConn{conn: conn, kind: n.punchKind(proto, contact)})
		case err == nil:
			conn.Close()
		case !errors.Is(err, errPunchedByPeer):
			n.log.Debug("punch: responder side failed", "peer", peer.Short(), "proto", proto, "err", err)
		}
	})
	return cancel
}

// tcpResponderLag is how long after the Sync the responder of a TCP punch sends its
// first SYN: the initiator's SYN must leave first. A router that still tracks the
// flow from an earlier attempt on the same ports (a punch that failed, a blind punch
// while no rendezvous was up; Linux keeps such an entry for two minutes) holds that
// attempt's initial sequence number. The initiator's new SYN, on the same ports and so
// with a later sequence number, resets it. But if the responder's SYN arrives first,
// the router forwards it to the initiator's listener (no socket is connecting yet),
// and every packet the initiator then sends on those ports, the listener's SYN-ACK or
// a new SYN, has a sequence number the entry calls out of window: conntrack marks it
// invalid, it leaves unNATed, and the ports are stuck until the entry expires. The
// initiator starts when its Sync is half a round trip from the responder; the lag
// covers the error in that guess and scheduling, and costs the punch no more than
// itself: the initiator's SYN is dropped by the responder's router, the responder's
// SYN meets the initiator's socket and completes a simultaneous open.
const tcpResponderLag = 5 * time.Millisecond

// lagBehindInitiator waits tcpResponderLag before a TCP responder punches.
func lagBehindInitiator(ctx context.Context, proto string) error {
	if proto != "tcp" {
		return nil
	}
	t := time.NewTimer(tcpResponderLag)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// runPunch punches toward c over proto until a connection is up (ours, or the
// peer's through our listener), or ctx ends. blind: the peer may not be punching
// at all (no rendezvous told it), so we dial whatever the NodeID order says.
func (n *node) runPunch(ctx context.Context, proto string, c transport.Contact, blind bool) (transport.Conn, error) {
	targets := punchTargets(c, proto)
	role := ""
	if proto == "quic" && !blind {
		role = n.birthdayRole(c)
	}
	if len(targets) == 0 && role != "spray" {
		return nil, fmt.Errorf("no %s endpoint of %s to punch toward (no reflected or public one)", proto, c.ID.Short())
	}
	n.punches.add(c.ID, proto, n.punchKind(proto, c), 1)
	defer n.punches.add(c.ID, proto, "", -1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Stop as soon as the peer is connected, whoever's socket made it.
	go func() {
		if n.dir.waitConnected(ctx, c.ID) == nil {
			cancel()
		}
	}()
	var conn transport.Conn
	var err error
	switch {
	case proto == "tcp":
		conn, err = n.punchTCP(ctx, targets, c.ID)
	case role == "dial":
		conn, err = n.punchBirthdayDial(ctx, targets, c)
	case role == "spray":
		conn, err = n.punchBirthdaySpray(ctx, targets, c)
	default:
		conn, err = n.punchQUIC(ctx, targets, c, blind)
	}
	if err != nil && n.dir.connected(c.ID) {
		return nil, errPunchedByPeer
	}
	return conn, err
}

// punchTargets lists the endpoints of c to punch toward for proto: reflected ones
// (STUN, peers' reflection), then public direct ones; toward an endpoint-dependent
// NAT, predicted next ports too.
func punchTargets(c transport.Contact, proto string) []netip.AddrPort {
	var out []netip.AddrPort
	add := func(ap netip.AddrPort) {
		if len(out) < maxPunchTargets*(1+predictedPorts) && !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	var base []netip.AddrPort
	for _, group := range [][]transport.Endpoint{c.Reflected, c.Public()} {
		for _, ep := range group {
			if a := ep.Addr.Addr(); !ep.Addr.IsValid() || a.IsUnspecified() || a.IsMulticast() || transport.IsLAN(a) && !a.IsLoopback() {
				// A private address (a peer on the same LAN saw us there) is for
				// the direct steps: behind another NAT it is some other host's.
				// (Loopback stays: nodes on one host punch there in tests.)
				continue
			}
			if ep.Proto == proto && len(base) < maxPunchTargets && !slices.Contains(base, ep.Addr) {
				base = append(base, ep.Addr)
			}
		}
	}
	for _, ap := range base {
		add(ap)
	}
	if c.NAT == "endpoint-dependent" {
		for _, ap := range base {
			for i := 1; i <= predictedPorts && int(ap.Port())+i <= 65535; i++ {
				add(netip.AddrPortFrom(ap.Addr(), ap.Port()+uint16(i)))
			}
		}
	}
	return out
}

// punchTCP dials every target from our listen port at once (simultaneous open);
// the first verified connection wins.
func (n *node) punchTCP(ctx context.Context, targets []netip.AddrPort, want identity.NodeID) (transport.Conn, error) {
	hops := 0
	if n.natBehavior() == "no-nat" {
		// Behind a stateful firewall at most: open it without reaching the peer's
		// side, which could answer a full SYN with a reset. (Behind a NAT, priming
		// TCP the same way made punches through rejecting routers worse in the
		// testbed: the peer's SYN then met a half-open connection on our listener.)
		hops = n.primeHops(ctx, targets)
	}
	attempts := make([]func(context.Context) (transport.Conn, error), len(targets))
	for i, t := range targets {
		attempts[i] = func(ctx context.Context) (transport.Conn, error) {
			n.primeTCP(ctx, t, hops)
			return n.cfg.PunchTCP.PunchDial(ctx, t, want)
		}
	}
	won, errs := raceConns(ctx, attempts...)
	if won != nil {
		return won, nil
	}
	return nil, fmt.Errorf("tcp punch to %v: %w", targets, errors.Join(errs...))
}

// raceConns runs the attempts at once; the first connection made wins and ends
// the others' context, and any later one is closed. It returns the winner, or
// every attempt's error.
func raceConns(ctx context.Context, attempts ...func(context.Context) (transport.Conn, error)) (transport.Conn, []error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn transport.Conn
		err  error
	}
	results := make(chan result, len(attempts))
	for _, attempt := range attempts {
		go func() {
			c, err := attempt(ctx)
			results <- result{c, err}
		}()
	}
	var won transport.Conn
	var errs []error
	for range attempts {
		r := <-results
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won == nil:
			won = r.conn
			cancel()
		default:
			r.conn.Close()
		}
	}
	return won, errs
}

// punchQUIC sends punch packets toward every target from the QUIC socket, so our
// NAT lets the peer's packets in; the node with the smaller NodeID then dials QUIC,
// the other one's listener accepts (no duplicate handshakes). A blind punch dials
// either way. A punch packet of the peer's from an endpoint we do not punch toward (a
// router that remapped the peer's flow, say because a packet of ours reached it
// first) adds that endpoint to the targets: punching back to it opens the way on both
// sides. Punch packets name their sender, so those of other nodes behind the same
// NAT address are not taken for the peer's.
func (n *node) punchQUIC(ctx context.Context, targets []netip.AddrPort, c transport.Contact, blind bool) (transport.Conn, error) {
	ts := &targetSet{list: slices.Clone(targets)}
	w := n.punches.watch(c.ID)
	defer n.punches.unwatch(w)
	punch := func(to []netip.AddrPort) {
		for _, t := range to {
			_ = n.cfg.PunchUDP.Punch(t)
		}
	}
	if hops := n.primeHops(ctx, targets); hops > 0 {
		for _, t := range targets {
			if err := n.cfg.PunchUDP.OpenFirewall(t, hops); err != nil {
				n.log.Debug("punch: priming our NAT for UDP", "target", t, "hops", hops, "err", err)
			}
		}
		settle(ctx)
	}
	punch(targets)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// confirmed gets the endpoints the peer's punch packets come from.
	confirmed := make(chan netip.AddrPort, 16)
	n.wg.Go(func() { // keep the mappings open and the peer's way in punched
		tick := time.NewTicker(punchInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ap := <-w.seen:
				if ts.add(ap) {
					n.log.Debug("punch: the peer's packets come from another port; punching back to it", "peer", c.ID.Short(), "from", ap)
					punch([]netip.AddrPort{ap})
				}
				select {
				case confirmed <- ap:
				default:
				}
			case <-tick.C:
				punch(ts.snapshot())
			}
		}
	})
	if !blind && !n.self.Less(c.ID) {
		<-ctx.Done()
		return nil, fmt.Errorf("quic punch: the peer (smaller NodeID) dials; it did not get through: %w", context.Cause(ctx))
	}
	// The peer's own endpoints are dialled at once. A predicted port, or one the
	// peer's router remapped, only once a punch packet of the peer's came from it: a
	// QUIC handshake costs a ClientHello (with its key shares) per port, and most
	// predicted ports lead nowhere. A blind punch has no peer punching: it dials
	// every target.
	first := punchBase(targets, c)
	if blind {
		first = targets
	}
	conn, err := n.dialPunched(ctx, first, confirmed, c.ID)
	if err != nil {
		return nil, fmt.Errorf("quic punch to %v: %w; last attempt: %w", ts.snapshot(), context.Cause(ctx), err)
	}
	return conn, nil
}

// punchBase is the targets that are c's own QUIC endpoints (reflected or public),
// not predicted ports.
func punchBase(targets []netip.AddrPort, c transport.Contact) []netip.AddrPort {
	var out []netip.AddrPort
	for _, group := range [][]transport.Endpoint{c.Reflected, c.Public()} {
		for _, ep := range group {
			if ep.Proto == "quic" && slices.Contains(targets, ep.Addr) && !slices.Contains(out, ep.Addr) {
				out = append(out, ep.Addr)
			}
		}
	}
	return out
}

// dialPunched dials QUIC to each of first at once, and to each endpoint that
// confirmed sends as it comes (once, and again after its dial failed); the first
// verified connection wins and later ones are closed. It returns when one connects
// or ctx ends, with the last dial's error.
func (n *node) dialPunched(ctx context.Context, first []netip.AddrPort, confirmed <-chan netip.AddrPort, want identity.NodeID) (transport.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		to   netip.AddrPort
		conn transport.Conn
		err  error
	}
	results := make(chan result)
	dialing := map[netip.AddrPort]bool{}
	dial := func(ap netip.AddrPort) {
		if dialing[ap] {
			return
		}
		dialing[ap] = true
		go func() {
			conn, err := n.protos["quic"].Dial(ctx, transport.Endpoint{Proto: "quic", Addr: ap}, want)
			results <- result{ap, conn, err}
		}()
	}
	last := errors.New("no punch packet of the peer's came in")
	// finish waits for the dials still running, closing what they connect.
	finish := func() {
		cancel()
		for range dialing {
			switch r := <-results; {
			case r.conn != nil:
				r.conn.Close()
			case r.err != nil:
				last = r.err
			}
		}
	}
	for _, ap := range first {
		dial(ap)
	}
	for {
		select {
		case r := <-results:
			delete(dialing, r.to)
			if r.err == nil {
				finish()
				if n.ctx.Err() != nil {
					r.conn.Close()
					return nil, ErrClosed
				}
				return r.conn, nil
			}
			last = r.err
		case ap := <-confirmed:
			dial(ap)
		case <-ctx.Done():
			finish()
			return nil, last
		}
	}
}

// FirewallOpener sends a hop-limited SYN from the TCP listen port (SocketSynergy):
// it passes our own NAT or stateful firewall, which then expects the peer, and dies
// before the peer's side, which might answer it with a reset.
type FirewallOpener interface {
	OpenFirewall(ctx context.Context, raddr netip.AddrPort, hops int) error
}

// defaultPrimeHops is the hop limit of the packets that prime our NAT or firewall
// before a punch: past the first router (ours) and no further.
const defaultPrimeHops = 2

// hopCountWait bounds counting the routers toward a punch target.
const hopCountWait = 200 * time.Millisecond

// primeSettle is how long a punch waits after priming before its first full
// packet: the peer primes at about the same moment (both start on the rendezvous's
// signal), and our packet must not reach its router first.
const primeSettle = 50 * time.Millisecond

// settle waits primeSettle or until ctx ends.
func settle(ctx context.Context) {
	t := time.NewTimer(primeSettle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// primeHops is the hop limit of the priming packets toward targets (for UDP always:
// a hop-limited punch datagram creates our NAT's mapping without reaching the peer's
// router, which, if it rejects or passes to its own stack what it did not expect,
// would otherwise answer ours when it came first, and a plain MASQUERADE router would
// then remap the peer's own packets to another port): Config.
// FirewallHops if set; else, with no NAT in front of us (a firewall at most; the
// peer may sit right behind the next router), the routers before the peer as HopsTo
// counts them, at most 2; else 2. 0: nothing to prime (the peer is on our link).
func (n *node) primeHops(ctx context.Context, targets []netip.AddrPort) int {
	if n.cfg.FirewallHops > 0 {
		return n.cfg.FirewallHops
	}
	if n.natBehavior() != "no-nat" || n.cfg.HopsTo == nil || len(targets) == 0 {
		return defaultPrimeHops
	}
	// The routers answer within milliseconds; a peer behind a NAT never does, so the
	// count is what came in by then.
	ctx, cancel := context.WithTimeout(ctx, hopCountWait)
	defer cancel()
	routers, err := n.cfg.HopsTo(ctx, targets[0], 8)
	switch {
	case err != nil:
		return defaultPrimeHops
	case routers == 0:
		return 0
	default:
		return min(defaultPrimeHops, routers)
	}
}

// primeTCP sends the hop-limited SYN toward t that creates our firewall's state for
// it without reaching the peer's side, then waits for the peer to be ready too.
func (n *node) primeTCP(ctx context.Context, t netip.AddrPort, hops int) {
	if n.cfg.Firewall == nil || hops <= 0 {
		return
	}
	// The priming socket must be gone before the peer's full SYN arrives (it comes
	// primeSettle after the peer's own priming), or that SYN meets it instead of our
	// punch: a Time Exceeded usually ends it at once, but routers rate-limit ICMP
	// (the hop count before used some of it), so it is abandoned early.
	octx, cancel := context.WithTimeout(ctx, primeSettle/2)
	err := n.cfg.Firewall.OpenFirewall(octx, t, hops)
	cancel()
	n.log.Debug("punch: opening our firewall", "target", t, "hops", hops, "err", err)
	settle(ctx)
}
