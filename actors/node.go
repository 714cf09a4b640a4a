package actors

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/bootstrap"
	"github.com/crust-p2p/crust/nat"
	"github.com/crust-p2p/crust/nat/upnp"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Config configures a Node. Zero values take the defaults stated per field; package
// crust documents them for users.
type Config struct {
	// Identity is the node's key pair. Required.
	Identity *identity.Identity
	// Transports dial outbound connections, one per protocol. Required.
	Transports []transport.Transport
	// Listeners accept inbound connections; one Listener actor each.
	Listeners []transport.Listener
	// Log receives the node's logs. Default: slog.Default().
	Log *slog.Logger
	// Clock tells the time. Default: transport.SystemClock.
	Clock transport.Clock
	// HandshakeTimeout bounds an inbound handshake, and how long a connection waits
	// for the peer's decision (Activate or Goodbye). Default: 10 s.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes caps inbound connections in handshake at once, per
	// listener; more are closed at once. Default: 64.
	MaxPendingHandshakes int
	// Limits bound connections, inbound rates and requests (see Limits).
	Limits Limits
	// KeepaliveInterval is how often a connected peer is pinged. Default: 3 s.
	KeepaliveInterval time.Duration
	// PeerTimeout is how long a connection may stay silent before it is dropped as
	// dead. Default: 12 s, so a dead peer is lost within 15 s.
	PeerTimeout time.Duration
	// SendQueueMessages bounds the messages queued per peer. Default: 4096.
	SendQueueMessages int
	// SendQueueBytes bounds the bytes queued per peer. Default: 16 MiB.
	SendQueueBytes int
	// SendBlocks makes Send wait for room instead of returning ErrQueueFull.
	SendBlocks bool
	// MaxMessageSize bounds one message. Default: 16 MiB - 16.
	MaxMessageSize int
	// EventBuffer is the capacity of the event channel. Default: 1024.
	EventBuffer int
	// MaxPendingMessages bounds received messages waiting beyond the event channel
	// before readers stop reading. Default: 4096.
	MaxPendingMessages int
	// MaxPendingBytes bounds the payload bytes of those messages. Default: 64 MiB.
	MaxPendingBytes int
	// OnMessage, if set, receives every message instead of the event channel. It is
	// called on the connection's reader goroutine, in order for each peer, and should
	// return quickly: while it runs, that peer is not read. Message.Data is lent: it
	// is valid only until the call returns.
	OnMessage func(Message)
	// Beacons, if any, are the LAN discovery sockets (IPv4 broadcast, IPv6
	// multicast); a Beacon actor runs them. They are closed when the node closes.
	Beacons []*beacon.Conn
	// BeaconTCPPort and BeaconQUICPort are the ports the beacon announces (0: none).
	BeaconTCPPort, BeaconQUICPort uint16
	// AnnounceInterval is how often the beacon announces us. Default: 30 s.
	AnnounceInterval time.Duration
	// StepTimeout bounds each step of the connection ladder. Default: 5 s.
	StepTimeout time.Duration
	// Puncher runs the hole-punch steps of the ladder. Default: none; they are skipped.
	Puncher Puncher
	// Bootstrap, if set, is the bootstrap cache: a Bootstrap actor dials its contacts
	// at start and records how direct connections go. The caller closes it after the
	// Node. Default: none.
	Bootstrap *bootstrap.Cache
	// Contacts are hard-coded contacts, dialled at start when there is no Bootstrap
	// cache (a cache has them already, first).
	Contacts []transport.Contact
	// BootstrapParallel is how many bootstrap contacts are dialled at once. Default: 4.
	BootstrapParallel int
	// BootstrapPeers is how many connected peers end the bootstrap. Default: 8.
	BootstrapPeers int
	// SaveDelay is how long after a change the bootstrap cache is saved, so a burst
	// of changes costs one write; also the first wait before retrying a failed save
	// (the waits double up to a minute). Default: 1 s.
	SaveDelay time.Duration
	// Policy decides which NodeIDs are dialled and accepted. Default: everyone.
	Policy *Policy
	// Prober asks STUN servers for our external endpoints and NAT behaviour; a NAT
	// actor runs it at start, every NATRecheck, and when peers see us at a new
	// address. Default: none.
	Prober *nat.Prober
	// NATRecheck is how often the Prober runs again. Default: 5 min.
	NATRecheck time.Duration
	// UPnP, if set, turns on port mapping on the LAN's gateway for UPnPWant; the
	// mappings are deleted when the node closes. Default: off.
	UPnP *upnp.Config
	// UPnPWant are the listen ports to map.
	UPnPWant []upnp.Wanted
	// PunchTCP and PunchUDP are the transports' hole-punch primitives; with either,
	// the ladder's punch steps run (rendezvous through a connected peer, then the
	// punch). Default: none, the punch steps are skipped.
	PunchTCP TCPPuncher
	PunchUDP UDPPuncher
	// Firewall opens our stateful firewall with a hop-limited SYN before a TCP punch,
	// when STUN says we have no NAT. Default: none.
	Firewall FirewallOpener
	// FirewallHops is the hop limit of that SYN; 0 picks it per path with HopsTo
	// (past our first router, never as far as the peer). Default: 0.
	FirewallHops int
	// HopsTo counts the routers on the path to an address. Default: none (2 hops).
	HopsTo func(ctx context.Context, raddr netip.AddrPort, max int) (int, error)
	// LocalPrefixes lists the networks of our interfaces: a direct step whose
	// candidates are all private addresses outside them gets a short budget.
	// Default: none known (every step gets StepTimeout).
	LocalPrefixes func() []netip.Prefix
	// Contact returns our current contact, sent to a peer we punch toward, from
	// what the node knows of its NAT and how peers see it (Node.NAT, Node.Reflected).
	// Required with PunchTCP or PunchUDP.
	Contact func(nat NATInfo, reflected []transport.Endpoint) transport.Contact
	// DialStagger is the delay between dial attempts to a peer's endpoints (happy
	// eyeballs). Default: 250 ms.
	DialStagger time.Duration
	// ReconnectFor is how long the node tries to reconnect to a peer whose live
	// connection failed without a Goodbye. Default: 1 minute; negative: never.
	ReconnectFor time.Duration
}

func (c *Config) setDefaults() {
	c.Limits.withDefaults()
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = transport.SystemClock{}
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.KeepaliveInterval, 3*time.Second)
	def(&c.PeerTimeout, 12*time.Second)
	def(&c.DialStagger, 250*time.Millisecond)
	if c.ReconnectFor == 0 {
		c.ReconnectFor = time.Minute
	}
	def(&c.StepTimeout, 5*time.Second)
	def(&c.AnnounceInterval, 30*time.Second)
	def(&c.SaveDelay, time.Second)
	def(&c.NATRecheck, 5*time.Minute)
	defInt(&c.BootstrapParallel, 4)
	defInt(&c.BootstrapPeers, 8)
	defInt(&c.MaxPendingHandshakes, 64)
	defInt(&c.SendQueueMessages, 4096)
	defInt(&c.SendQueueBytes, 16<<20)
	defInt(&c.MaxMessageSize, 16<<20-16)
	defInt(&c.EventBuffer, 1024)
	defInt(&c.MaxPendingMessages, 4096)
	defInt(&c.MaxPendingBytes, 64<<20)
}

// node is what every actor of one Node shares: configuration, the data plane, and
// the goroutines' owner.
type node struct {
	cfg    Config
	self   identity.NodeID
	log    *slog.Logger
	clock  transport.Clock
	engine *actor.Engine
	emit   *Emitter
	dir    *Directory
	protos map[string]transport.Transport
	// reflected records how peers see us (their Hello's observed address).
	reflected reflections
	actSeq    atomic.Uint64   // Activate sequence: starts at the clock, so it grows across restarts
	ctx       context.Context // cancelled when the Node closes: stops dials and handshakes
	wg        sync.WaitGroup  // every goroutine a Node starts, but dials
	dialWG    sync.WaitGroup  // dial goroutines: waited for before the actors stop
	// bootstrap is the Bootstrap actor, if there is a cache: peers report to it.
	bootstrap atomic.Pointer[actor.PID]
	// supervisorPID and rendezvousPID are the Supervisor and the Rendezvous actor.
	supervisorPID atomic.Pointer[actor.PID]
	rendezvousPID atomic.Pointer[actor.PID]
	// punches are the hole punches in progress, by peer and protocol.
	punches punching
	// birthdays rations birthday punches (each keeps 256 sockets and NAT mappings
	// busy).
	birthdays *birthdayBudget
	// stats counts ladder attempts and successes.
	stats ladderStats
	// refused counts what limits and lists refused, by reason.
	refused refusals
	// traffic counts every session's messages and payload bytes since Start.
	traffic counters
	// open counts the connections the Peer actors hold (connStates).
	open atomic.Int64
	// resumes is what our Hellos say about resuming streams after a fault (resume.go).
	resumes resumeStore
	// delivery counts resumes and what Undelivered gave back.
	delivery deliveryCounters
	// sources rations inbound connection attempts per IP address.
	sources sourceLimits
	// natPID is the NAT actor; nat is what it knows, published for readers.
	natPID atomic.Pointer[actor.PID]
	nat    atomic.Pointer[NATInfo]
}

// externalChanged tells the NAT actor that a peer saw us at a new address.
func (n *node) externalChanged() {
	if pid := n.natPID.Load(); pid != nil && n.ctx.Err() == nil {
		n.engine.Send(pid, externalChanged{})
	}
}

// report tells the Bootstrap actor, if any, how a connection went.
func (n *node) report(o connOutcome) {
	if pid := n.bootstrap.Load(); pid != nil && n.ctx.Err() == nil {
		n.engine.Send(pid, o)
	}
}

// Node is a running crust node: the actors, the listeners and the data plane.
type Node struct {
	n          *node
	cancel     context.CancelFunc
	supervisor *actor.PID
	closeOnce  sync.Once
	closed     chan struct{}
}

// FillHello sets our Hello's per-peer fields (Stream, Resume) for a connection to
// peer: the transports' Common.HelloExtra.
func (n *Node) FillHello(peer identity.NodeID, h *wire.Hello) { n.n.fillHello(peer, h) }

// Start spawns the actors and starts accepting on cfg.Listeners.
func Start(cfg Config) (*Node, error) {
	cfg.setDefaults()
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{
		cfg:    cfg,
		self:   cfg.Identity.ID(),
		log:    cfg.Log,
		clock:  cfg.Clock,
		engine: engine,
		emit:   NewEmitter(cfg.EventBuffer, cfg.MaxPendingMessages, cfg.MaxPendingBytes),
		dir:    NewDirectory(),
		protos: make(map[string]transport.Transport),
		ctx:    ctx,

		birthdays: newBirthdayBudget(),
		sources:   sourceLimits{rate: cfg.Limits.SourceRate, burst: cfg.Limits.SourceBurst},
	}
	n.actSeq.Store(uint64(cfg.Clock.Now().UnixNano()))
	if n.cfg.Puncher == nil && (cfg.PunchTCP != nil || cfg.PunchUDP != nil) {
		n.cfg.Puncher = nodePuncher{n}
	}
	for _, t := range cfg.Transports {
		n.protos[t.Proto()] = t
	}
	go n.emit.Run()
	nd := &Node{n: n, cancel: cancel, closed: make(chan struct{})}
	nd.supervisor = engine.Spawn(newSupervisor(n), "supervisor", spawnOpts(n.log, n.self.Short())...)
	n.supervisorPID.Store(nd.supervisor)
	return nd, nil
}

// Events is the event channel; it is closed by Close.
func (nd *Node) Events() <-chan Event { return nd.n.emit.Events() }

// Peers lists the connected peers.
func (nd *Node) Peers() []PeerInfo { return nd.n.dir.Peers() }

// Connect connects to the contact, climbing the ladder, and waits until the peer is
// connected, every step failed, or ctx ends.
func (nd *Node) Connect(ctx context.Context, c transport.Contact) error {
	res := make(chan error, 1)
	if err := nd.request(ConnectPeer{Contact: c, Result: res}); err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-nd.closed:
		return ErrClosed
	}
}

// Disconnect closes the connection to id with a Goodbye. PeerLost follows once the
// peer has answered (or its Goodbye timed out).
func (nd *Node) Disconnect(id identity.NodeID) error {
	res := make(chan error, 1)
	if err := nd.request(DisconnectPeer{ID: id, Result: res}); err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-nd.closed:
		return ErrClosed
	}
}

func (nd *Node) request(msg any) error {
	select {
	case <-nd.closed:
		return ErrClosed
	default:
	}
	nd.n.engine.Send(nd.supervisor, msg)
	return nil
}

// Send queues data for id. It copies data. It returns ErrNotConnected for a peer
// without a live connection, ErrQueueFull when the peer's queue is full (unless
// SendBlocks), ErrMessageTooLarge, or ErrClosed.
func (nd *Node) Send(id identity.NodeID, data []byte) error {
	if len(data) > nd.n.cfg.MaxMessageSize {
		return ErrMessageTooLarge
	}
	q := nd.n.dir.queue(id)
	if q == nil {
		select {
		case <-nd.closed:
			return ErrClosed
		default:
			return ErrNotConnected
		}
	}
	return q.push(data, nd.n.cfg.SendBlocks, nd.closed)
}

// Close says Goodbye to every peer (waiting up to grace for their answers), stops
// every actor and goroutine, and closes the event channel. Safe to call more than once.
func (nd *Node) Close(grace time.Duration) {
	nd.closeOnce.Do(func() {
		close(nd.closed)
		done := make(chan struct{})
		nd.n.engine.Send(nd.supervisor, Shutdown{Grace: grace, Done: done})
		<-done
		nd.cancel()
		// Dials end promptly once cancelled; their results must reach live actors,
		// which close what they bring, before the actors stop.
		nd.n.dialWG.Wait()
		<-nd.n.engine.Poison(nd.supervisor).Done()
		nd.n.wg.Wait()
		nd.n.emit.Close()
	})
}

// ReportListenerFailed delivers a ListenerFailed event for a listen error that
// happened before Start.
func (nd *Node) ReportListenerFailed(addr string, err error) {
	nd.n.emit.Control(ListenerFailed{Addr: addr, Err: err})
}

// ConnCount returns how many connections to id are open or being opened: the live
// one, any still closing, and a dial in flight. A diagnostic for the
// one-connection-per-pair rule.
func (nd *Node) ConnCount(id identity.NodeID) int {
	return askInt(nd, func(res chan int) any { return countConns{id: id, result: res} })
}

// Reflected returns our endpoints as peers saw them, newest first per protocol.
func (nd *Node) Reflected() []transport.Endpoint { return nd.n.reflected.endpoints() }

// PunchSeen tells the node of a punch packet of node id that arrived from from
// (the QUIC transport's OnPunch): a QUIC punch in progress toward id punches back
// to from if it did not already.
func (nd *Node) PunchSeen(from netip.AddrPort, id identity.NodeID) { nd.n.punches.seen(from, id) }

// NAT returns what the node knows of the NAT in front of it.
func (nd *Node) NAT() NATInfo { return nd.n.natInfo() }

// natInfo returns what the node knows of the NAT in front of it.
func (n *node) natInfo() NATInfo {
	if p := n.nat.Load(); p != nil {
		return *p
	}
	return NATInfo{Behavior: "unknown"}
}

// contact returns our current contact (Config.Contact).
func (n *node) contact() transport.Contact {
	return n.cfg.Contact(n.natInfo(), n.reflected.endpoints())
}

// PeerActors returns how many peer actors the node holds: a diagnostic showing that
// actors for peers that are gone are retired.
func (nd *Node) PeerActors() int {
	return askInt(nd, func(res chan int) any { return countPeers{result: res} })
}

// askInt sends the Supervisor the request msg builds and waits for its answer; 0 once
// the node is closed.
func askInt(nd *Node, msg func(chan int) any) int {
	res := make(chan int, 1)
	if nd.request(msg(res)) != nil {
		return 0
	}
	select {
	case n := <-res:
		return n
	case <-nd.closed:
		return 0
	}
}
