package vnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Network.
type Config struct {
	// Clock schedules every packet hop and tells the time of NAT mappings, traces and
	// deadlines. Default: RealClock{}. Tests use a *VirtualClock.
	Clock Scheduler
	// Seed seeds the random number generator (PCG) behind link loss and random NAT
	// port choices: two runs with the same seed and the same calls are identical.
	// Default: 0, which is a seed like any other.
	Seed uint64
	// QueueLen is how many datagrams a socket holds unread before it drops new ones
	// (DropQueueFull). Default: 128.
	QueueLen int
	// Trace, if set, is called for every step of every datagram and stream segment
	// (see Event). It is called with the network locked: it must not call into the
	// Network or its hosts.
	Trace func(Event)
	// Backlog is how many connections a stream Listener holds that are handshaking
	// or not yet accepted; SYNs beyond it are dropped (DropBacklogFull) and the
	// dialler retransmits. Default: 128.
	Backlog int
}

// Link is the wire between a host or router and the network it sits on (the internet
// or a router's LAN). A datagram crossing it, in either direction, takes Latency and
// is lost with probability Loss.
type Link struct {
	// Latency is the one-way delay. Default: 0 (the hop still goes through the
	// scheduler).
	Latency time.Duration
	// Loss is the probability, from 0 to 1, that a datagram crossing the link is
	// dropped (DropLoss). Stream segments are never lost. Default: 0.
	Loss float64
}

// Network is the virtual internet: public hosts and NAT routers on it, and the hosts
// and routers on those routers' LANs. Its methods are safe for concurrent use.
type Network struct {
	cfg   Config
	clock Scheduler

	mu       sync.Mutex
	rng      *rand.Rand
	internet *segment
	stats    Stats
}

// New returns an empty Network.
func New(cfg Config) *Network {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 128
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 128
	}
	return &Network{
		cfg:      cfg,
		clock:    cfg.Clock,
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		internet: newSegment(nil),
		stats:    Stats{Dropped: map[DropReason]uint64{}},
	}
}

// Clock returns the network's scheduler.
func (n *Network) Clock() Scheduler { return n.clock }

// Stats returns a copy of the counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats.clone()
}

// AddHost puts a host with the public address addr on the internet.
func (n *Network) AddHost(addr netip.Addr) (*Host, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addHost(n.internet, addr)
}

// AddNAT puts a NAT router (or, with cfg.FirewallOnly, a firewall) with the public
// address publicAddr on the internet.
func (n *Network) AddNAT(publicAddr netip.Addr, cfg NATConfig) (*Router, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addRouter(n.internet, publicAddr, cfg)
}

// node is what sits on a segment: a host, or a router by its WAN side.
type node interface {
	// uplink returns the link to the segment the node sits on.
	uplink() Link
	// receive takes a datagram that crossed the uplink towards the node.
	receive(p packet)
	String() string
}

// segment is one network: the internet, or one router's LAN.
type segment struct {
	owner *Router // nil for the internet
	// nodes holds the hosts and routers on the segment by address; for a firewall on
	// the segment it also holds the addresses of the firewall's inside hosts, which
	// are reached through it.
	nodes map[netip.Addr]node
}

func newSegment(owner *Router) *segment {
	return &segment{owner: owner, nodes: map[netip.Addr]node{}}
}

// packet is a datagram or a stream segment in flight.
type packet struct {
	src, dst netip.AddrPort
	payload  []byte
	// proto is protoUDP for datagrams; stream segments (protoTCP) also carry flags
	// and, for data and FIN, a sequence number (see stream.go).
	proto protocol
	flags segFlags
	seq   uint64
}

// protocol separates datagrams from stream segments: each has its own ports on a
// host and its own mappings on a NAT.
type protocol uint8

const (
	protoUDP protocol = iota
	protoTCP
)

func (p protocol) String() string {
	if p == protoTCP {
		return "tcp"
	}
	return "udp"
}

// addHost adds a host on seg; n.mu is held.
func (n *Network) addHost(seg *segment, addr netip.Addr) (*Host, error) {
	addr = addr.Unmap()
	if err := n.claim(seg, addr); err != nil {
		return nil, err
	}
	h := &Host{
		net: n, addr: addr, seg: seg, sockets: map[uint16]*PacketConn{}, nextEphemeral: firstEphemeral,
		listeners: map[uint16]*Listener{}, streams: map[streamKey]*StreamConn{}, tcpPorts: map[uint16]*tcpPortUse{},
		timeWait: map[streamKey]time.Time{}, timeWaitSweep: 64,
	}
	n.attach(seg, addr, h)
	return h, nil
}

// addRouter adds a router with WAN address addr on seg; n.mu is held.
func (n *Network) addRouter(seg *segment, addr netip.Addr, cfg NATConfig) (*Router, error) {
	addr = addr.Unmap()
	if err := n.claim(seg, addr); err != nil {
		return nil, err
	}
	r := newRouter(n, seg, addr, cfg)
	n.attach(seg, addr, r)
	return r, nil
}

// claim checks that addr is IPv4 and free on seg and, through firewalls, on every
// segment it is routed on.
func (n *Network) claim(seg *segment, addr netip.Addr) error {
	if !addr.Is4() {
		return fmt.Errorf("adding %s: %w", addr, ErrNotIPv4)
	}
	for s := seg; s != nil; s = s.owner.outerIfFirewall() {
		if _, ok := s.nodes[addr]; ok {
			return fmt.Errorf("adding %s: %w", addr, ErrAddrTaken)
		}
	}
	return nil
}

// attach puts nd on seg under addr and, where seg is a firewall's inside, routes addr
// to the firewall on the segments outside it.
func (n *Network) attach(seg *segment, addr netip.Addr, nd node) {
	for {
		seg.nodes[addr] = nd
		if seg.owner == nil || !seg.owner.cfg.FirewallOnly {
			return
		}
		nd, seg = seg.owner, seg.owner.seg
	}
}

// up sends p from nd over nd's uplink onto seg.
func (n *Network) up(nd node, seg *segment, p packet) {
	n.cross(nd.uplink(), nd, p, func(p packet) { n.route(seg, p) })
}

// route forwards p, which arrived on seg from one of its nodes: to the node that has
// the destination address, else out through the segment's router.
func (n *Network) route(seg *segment, p packet) {
	if p.proto == protoUDP && isBroadcast(p.src.Addr(), p.dst.Addr()) {
		n.broadcast(seg, p)
		return
	}
	if nd, ok := seg.nodes[p.dst.Addr()]; ok {
		n.cross(nd.uplink(), nd, p, nd.receive)
		return
	}
	if seg.owner != nil {
		seg.owner.outbound(p)
		return
	}
	n.drop("internet", p, DropUnroutable)
}

// isBroadcast reports whether dst is a broadcast address for a sender at src: the
// limited broadcast 255.255.255.255, or the directed broadcast of src's /24 (every
// host's network is a /24, as sim.Net reports it).
func isBroadcast(src, dst netip.Addr) bool {
	if dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	s, d := src.As4(), dst.As4()
	return d[3] == 255 && s[0] == d[0] && s[1] == d[1] && s[2] == d[2]
}

// broadcast delivers a copy of datagram p to every other host on seg; routers do not
// pass it on, so it stays on its LAN (on the internet it reaches the hosts that sit
// right on it, which the simulator's scenarios do not broadcast from).
func (n *Network) broadcast(seg *segment, p packet) {
	for addr, nd := range seg.nodes {
		if h, ok := nd.(*Host); ok && addr != p.src.Addr() {
			n.cross(h.uplink(), h, p, h.receive)
		}
	}
}

// deliverInside forwards p, which a router let in, to the node on its LAN that has
// the destination address.
func (n *Network) deliverInside(r *Router, p packet) {
	nd, ok := r.lan.nodes[p.dst.Addr()]
	if !ok {
		n.drop(r.String(), p, DropUnroutable)
		return
	}
	n.cross(nd.uplink(), nd, p, nd.receive)
}

// cross sends p over link l, whose far end then runs arrive with the network locked.
// at names the node the link belongs to, for traces. Only datagrams are subject to
// the link's loss: streams have no retransmission of data, so their segments always
// cross.
func (n *Network) cross(l Link, at node, p packet, arrive func(packet)) {
	if p.proto == protoUDP && l.Loss > 0 && n.rng.Float64() < l.Loss {
		n.drop(at.String(), p, DropLoss)
		return
	}
	n.clock.AfterFunc(l.Latency, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		arrive(p)
	})
}

// drop counts and traces a dropped datagram or segment.
func (n *Network) drop(where string, p packet, reason DropReason) {
	n.stats.Dropped[reason]++
	n.trace(EventDrop, where, p, reason)
}

// trace reports one step of p to Config.Trace.
func (n *Network) trace(kind EventKind, where string, p packet, reason DropReason) {
	if n.cfg.Trace == nil {
		return
	}
	n.cfg.Trace(Event{
		Time: n.clock.Now(), Kind: kind, Node: where,
		Src: p.src, Dst: p.dst, Len: len(p.payload), Reason: reason,
		Proto: p.proto.String(), Flags: p.flags.String(),
	})
}
