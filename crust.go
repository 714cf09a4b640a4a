package crust

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust/actors"
	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/bootstrap"
	"github.com/crust-p2p/crust/nat"
	"github.com/crust-p2p/crust/nat/stun"
	"github.com/crust-p2p/crust/nat/upnp"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Service is a running crust node. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	ident *identity.Identity
	tcp   *transport.TCP  // nil when "tcp" is not in Protocols
	quic  *transport.QUIC // nil when "quic" is not in Protocols
	node  *actors.Node
	cache *bootstrap.Cache // nil without a bootstrap file
	// policy holds the whitelist and blacklists; Block and the others change it.
	policy *actors.Policy
	// started is node once New has it (the QUIC transport's OnPunch may run first).
	started atomic.Pointer[actors.Node]
}

// hopsTo is the hop counter of the firewall punch on net: the operating system's
// (transport.HopsTo opens sockets of its own) when the node runs on it; none on any
// other Net, such as the simulator's, whose packets must stay in it.
func hopsTo(net transport.Net) func(context.Context, netip.AddrPort, int) (int, error) {
	if onOS(net) {
		return transport.HopsTo
	}
	return nil
}

// onOS reports whether net is the operating system's network. Where a part opens
// sockets of its own (the hop counter, the beacon's shared socket, the UPnP client's
// HTTP), a virtual Net needs them opened through it instead.
func onOS(net transport.Net) bool {
	_, ok := net.(transport.OSNet)
	return ok
}

// punchSeen passes a punch packet that arrived to the node (QUICConfig.OnPunch).
func (s *Service) punchSeen(from netip.AddrPort, id NodeID) {
	if node := s.started.Load(); node != nil {
		node.PunchSeen(from, id)
	}
}

// fillHello fills in our Hello's resume fields once the node runs (Common.HelloExtra).
func (s *Service) fillHello(peer NodeID, h *wire.Hello) {
	if node := s.started.Load(); node != nil {
		node.FillHello(peer, h)
	}
}

// New starts a Service: it loads or creates the node key, binds the listeners (TCP,
// then QUIC on the same port numbers) and starts the actors. Listen addresses that
// fail are reported as ListenerFailed events; New fails only if none can be bound.
func New(cfg Config) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ident := cfg.Identity
	if ident == nil {
		var err error
		if cfg.DataDir == "" {
			ident, err = identity.Generate()
		} else {
			ident, err = identity.LoadOrCreate(cfg.DataDir)
		}
		if err != nil {
			return nil, err
		}
	}
	policy := actors.NewPolicy(cfg.Whitelist, cfg.Blacklist, cfg.BlacklistPrefixes...)
	s := &Service{cfg: cfg, ident: ident, policy: policy}
	// The cache first: a second process on the data directory fails here, before it
	// binds anything.
	cache, err := openCache(cfg)
	if err != nil {
		return nil, err
	}
	s.cache = cache
	var (
		transports []transport.Transport
		listeners  []transport.Listener
		errs       []error
	)
	common := transport.Common{
		Identity:         ident,
		Net:              cfg.Net,
		Clock:            cfg.Clock,
		MaxFrameSize:     cfg.MaxFrameSize,
		HandshakeTimeout: cfg.HandshakeTimeout,
		Endpoints:        s.Endpoints, // Hello lists both protocols' endpoints
		Allow:            policy.Allowed,
		HelloExtra:       s.fillHello,
		Log:              cfg.Log,
	}
	// STUN over UDP shares the QUIC sockets: the QUIC transport hands every non-QUIC
	// datagram to it, and it sends from those sockets.
	var stunUDP *stun.UDP
	if len(cfg.StunServers) > 0 && cfg.protocol("quic") {
		stunUDP = stun.NewUDP(func(b []byte, to netip.AddrPort) error {
			_, err := s.quic.WriteTo(b, to)
			return err
		})
	}
	quicAddrs := cfg.ListenAddrs
	if cfg.protocol("tcp") {
		tcp, err := transport.NewTCP(transport.TCPConfig{Common: common})
		if err != nil {
			return nil, err
		}
		lns, lerrs := tcp.Listen(context.Background(), cfg.ListenAddrs)
		s.tcp, transports = tcp, append(transports, tcp)
		listeners, errs = append(listeners, lns...), append(errs, lerrs...)
		if len(lns) > 0 {
			quicAddrs = samePort(cfg.ListenAddrs, lns[0].Endpoint().Addr.Port())
		}
	}
	if cfg.protocol("quic") {
		qcfg := transport.QUICConfig{Common: common, OnPunch: s.punchSeen}
		if stunUDP != nil {
			qcfg.OnPacket = func(b []byte, from net.Addr) { stunUDP.HandlePacket(b, transport.AddrPortOf(from)) }
		}
		q, err := transport.NewQUIC(qcfg)
		if err != nil {
			s.closeListeners(listeners)
			return nil, err
		}
		lns, lerrs := q.Listen(context.Background(), quicAddrs)
		// The TCP port number may be taken for UDP: then any free port will do, but
		// only where the port was ours to choose (0 in ListenAddrs).
		for i, e := range lerrs {
			var le *transport.ListenError
			if errors.As(e, &le) && le.Addr != "" && !slices.Contains(cfg.ListenAddrs, le.Addr) {
				if host, port, err := net.SplitHostPort(le.Addr); err == nil && port != "0" {
					cfg.Log.Warn("UDP port taken; QUIC listens on another", "addr", le.Addr, "err", le.Err)
					more, again := q.Listen(context.Background(), []string{net.JoinHostPort(host, "0")})
					if len(more) > 0 {
						lns, lerrs[i] = append(lns, more...), nil
					} else if len(again) > 0 {
						lerrs[i] = again[0]
					}
				}
			}
		}
		s.quic, transports = q, append(transports, q)
		listeners = append(listeners, lns...)
		for _, e := range lerrs {
			if e != nil {
				errs = append(errs, e)
			}
		}
	}
	if len(listeners) == 0 {
		s.closeListeners(nil)
		s.closeCache()
		return nil, fmt.Errorf("no listen address could be bound: %v", errs)
	}
	beacons, err := listenBeacons(cfg, ident.ID())
	if err != nil {
		s.closeListeners(listeners)
		s.closeCache()
		return nil, err
	}
	tcpPort, quicPort := listenPort(listeners, "tcp"), listenPort(listeners, "quic")
	node, err := actors.Start(actors.Config{
		Beacons:              beacons,
		BeaconTCPPort:        tcpPort,
		BeaconQUICPort:       quicPort,
		AnnounceInterval:     cfg.AnnounceInterval,
		Identity:             ident,
		Transports:           transports,
		Listeners:            listeners,
		Log:                  cfg.Log,
		Clock:                cfg.Clock,
		HandshakeTimeout:     cfg.HandshakeTimeout,
		MaxPendingHandshakes: cfg.MaxPendingHandshakes,
		Limits:               cfg.Limits,
		ReconnectFor:         cfg.ReconnectFor,
		KeepaliveInterval:    cfg.KeepaliveInterval,
		PeerTimeout:          cfg.PeerTimeout,
		SendQueueMessages:    cfg.SendQueueMessages,
		SendQueueBytes:       cfg.SendQueueBytes,
		SendBlocks:           cfg.SendBlocks,
		MaxMessageSize:       cfg.MaxMessageSize,
		EventBuffer:          cfg.EventBuffer,
		MaxPendingMessages:   cfg.MaxPendingMessages,
		MaxPendingBytes:      cfg.MaxPendingBytes,
		OnMessage:            cfg.OnMessage,
		StepTimeout:          cfg.StepTimeout,
		Bootstrap:            cache,
		Contacts:             cfg.Contacts,
		BootstrapParallel:    cfg.BootstrapParallel,
		BootstrapPeers:       cfg.BootstrapPeers,
		Policy:               policy,
		Prober:               s.prober(stunUDP, tcpPort, quicPort),
		NATRecheck:           cfg.NATRecheck,
		UPnP:                 s.upnpConfig(),
		UPnPWant:             upnpWant(listeners),
		PunchTCP:             s.tcpPuncher(),
		PunchUDP:             s.udpPuncher(),
		Firewall:             s.tcpFirewall(),
		FirewallHops:         cfg.FirewallHops,
		HopsTo:               hopsTo(cfg.Net),
		Contact:              s.contact,
		LocalPrefixes:        s.localPrefixes,
	})
	if err != nil {
		s.closeListeners(listeners)
		s.closeCache()
		for _, b := range beacons {
			b.Close()
		}
		return nil, err
	}
	s.node = node
	s.started.Store(node)
	for _, e := range errs {
		cfg.Log.Warn("listen address failed", "err", e)
		addr := ""
		var le *transport.ListenError
		if errors.As(e, &le) {
			addr = le.Addr
		}
		node.ReportListenerFailed(addr, e)
	}
	return s, nil
}

// listenBeacons opens the beacon sockets: one for the IPv4 broadcast addresses among
// cfg.BeaconAddrs, one for the IPv6 multicast groups.
func listenBeacons(cfg Config, id NodeID) ([]*beacon.Conn, error) {
	var v4, v6 []netip.Addr
	for _, a := range cfg.BeaconAddrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a.Unmap())
		} else {
			v6 = append(v6, a)
		}
	}
	var out []*beacon.Conn
	for _, group := range []struct {
		addrs  []netip.Addr
		listen netip.Addr
	}{{v4, netip.IPv4Unspecified()}, {v6, netip.IPv6Unspecified()}} {
		if len(group.addrs) == 0 {
			continue
		}
		bc := beacon.Config{ID: id, Port: cfg.BeaconPort, ListenAddr: group.listen, Addrs: group.addrs, Logger: cfg.Log}
		if !onOS(cfg.Net) {
			// A virtual network's sockets and interfaces (the OS's need socket options
			// beacon.Listen sets itself).
			bc.ListenPacket, bc.Interfaces = cfg.Net.ListenPacket, cfg.Net
		}
		c, err := beacon.Listen(context.Background(), bc)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("starting the LAN beacon: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// listenPort returns the port of the first listener of proto, or 0.
func listenPort(lns []transport.Listener, proto string) uint16 {
	for _, l := range lns {
		if ep := l.Endpoint(); ep.Proto == proto {
			return ep.Addr.Port()
		}
	}
	return 0
}

// samePort returns addrs with port 0 replaced by port.
func samePort(addrs []string, port uint16) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a
		if host, p, err := net.SplitHostPort(a); err == nil && p == "0" {
			out[i] = net.JoinHostPort(host, strconv.Itoa(int(port)))
		}
	}
	return out
}

// closeListeners undoes a failed New.
func (s *Service) closeListeners(lns []transport.Listener) {
	for _, l := range lns {
		l.Close()
	}
	if s.quic != nil {
		s.quic.Close()
	}
}

// ID returns this node's NodeID.
func (s *Service) ID() NodeID { return s.ident.ID() }

// Endpoints returns where this node listens, TCP then QUIC.
func (s *Service) Endpoints() []Endpoint {
	var out []Endpoint
	if s.tcp != nil {
		out = append(out, s.tcp.Endpoints()...)
	}
	if s.quic != nil {
		out = append(out, s.quic.Endpoints()...)
	}
	return out
}

// Contact returns this node's contact, to hand to peers: its ID, its listen endpoints,
// its UPnP mappings, its reflected endpoints (how STUN servers and peers saw it), and
// its NAT's mapping behaviour if STUN told it.
func (s *Service) Contact() Contact { return s.contact(s.node.NAT(), s.node.Reflected()) }

// contact is our contact given what the node knows of its NAT and how peers see it.
func (s *Service) contact(info actors.NATInfo, seen []Endpoint) Contact {
	reflected := info.STUN
	for _, ep := range seen {
		if !slices.Contains(reflected, ep) {
			reflected = append(reflected, ep)
		}
	}
	c := Contact{ID: s.ID(), Endpoints: s.Endpoints(), UPnP: info.UPnP, Reflected: reflected}
	if info.Behavior != "unknown" {
		c.NAT = info.Behavior
	}
	return c
}

// LadderStats counts, since New, the runs of each ladder step (Attempts, by step
// name; a punch's responder side included) and the sessions each kind of connection
// started (Successes, by connection kind: "tcp-direct", "tcp-upnp", "tcp-punch",
// "firewall-punch", "quic-direct", "quic-punch"; inbound connections count as their
// kind, a punched one as punched).
func (s *Service) LadderStats() map[string]StepCount { return s.node.LadderStats() }

// NAT returns what the node knows of the NAT in front of it: the mapping behaviour
// and external endpoints STUN reported (with StunServers), and the UPnP mappings
// (with UPnP).
func (s *Service) NAT() NATInfo { return s.node.NAT() }

// tcpPuncher and udpPuncher return the transports' punch primitives, or nil
// interfaces where the protocol is off.
func (s *Service) tcpPuncher() actors.TCPPuncher {
	if s.tcp == nil {
		return nil
	}
	return s.tcp
}

func (s *Service) tcpFirewall() actors.FirewallOpener {
	if s.tcp == nil {
		return nil
	}
	return s.tcp
}

func (s *Service) udpPuncher() actors.UDPPuncher {
	if s.quic == nil {
		return nil
	}
	return s.quic
}

// prober returns the STUN prober for the node's sockets, or nil without servers.
func (s *Service) prober(udp *stun.UDP, tcpPort, quicPort uint16) *nat.Prober {
	if len(s.cfg.StunServers) == 0 {
		return nil
	}
	p := &nat.Prober{Servers: s.cfg.StunServers, UDP: udp, UDPPort: quicPort, TCPPort: tcpPort, LocalAddrs: s.localAddrs}
	if s.tcp != nil {
		p.DialTCP = s.tcp.DialRaw
	}
	return p
}

// localAddrs lists the host's addresses, to tell "no NAT" from STUN's answers.
func (s *Service) localAddrs() []netip.Addr {
	var out []netip.Addr
	for _, p := range s.localPrefixes() {
		out = append(out, p.Addr())
	}
	return out
}

// localPrefixes lists the host's addresses with their networks.
func (s *Service) localPrefixes() []netip.Prefix {
	addrs, err := s.cfg.Net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
		}
	}
	return out
}

// upnpConfig returns the UPnP mapper's config, or nil when UPnP is off.
func (s *Service) upnpConfig() *upnp.Config {
	if !s.cfg.UPnP {
		return nil
	}
	c := &upnp.Config{RootURL: s.cfg.UPnPRootURL, Lease: s.cfg.UPnPLease, Description: "crust " + s.ID().Short(), Log: s.cfg.Log}
	if !onOS(s.cfg.Net) {
		// The gateway is on a virtual network: reach it through Net's streams.
		c.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: s.cfg.Net.Dial, DisableKeepAlives: true}, Timeout: upnpHTTPTimeout}
	}
	return c
}

// upnpHTTPTimeout bounds one request to a gateway on a virtual network, as the upnp
// package's own client does on the OS's.
const upnpHTTPTimeout = 30 * time.Second

// upnpWant lists the IPv4 listen sockets to map: TCP listeners and QUIC's UDP ones.
func upnpWant(lns []transport.Listener) []upnp.Wanted {
	var want []upnp.Wanted
	for _, l := range lns {
		ep := l.Endpoint()
		if !ep.Addr.Addr().Unmap().Is4() {
			continue
		}
		proto := "tcp"
		if ep.Proto == "quic" {
			proto = "udp"
		}
		want = append(want, upnp.Wanted{Proto: proto, Internal: ep.Addr})
	}
	return want
}

// Connect connects to the contact and returns once the peer is connected (at once if
// it already is), or ctx's error, or a *LadderError listing each ladder step and why it
// failed. The ladder tries, in order: TCP direct (LAN endpoints first), TCP through
// UPnP mappings, TCP hole punch, QUIC direct, QUIC hole punch; steps without
// candidates are skipped. A PeerConnected event says which step won. A peer that proves
// another NodeID than c.ID is refused with an error naming both.
func (s *Service) Connect(ctx context.Context, c Contact) error {
	return s.node.Connect(ctx, c)
}

// ConnCount returns how many connections to id are open or being opened: the live
// one, any still closing, and a dial in flight. A diagnostic of the
// one-connection-per-pair rule, which the simulator checks across a whole network.
func (s *Service) ConnCount(id NodeID) int { return s.node.ConnCount(id) }

// Send queues data for the peer and returns without waiting. Messages to one peer
// arrive in the order sent, each once, while the connection lives; data is copied.
// A full queue returns ErrQueueFull (or waits, with Config.SendBlocks).
//
// The promise: a message Send accepted (nil error) is delivered to the peer's
// application (its Events or OnMessage), or it comes back in an Undelivered event:
// as Unsent if the session ended before it was written, as Unacknowledged if it was
// written on a connection that then failed before the peer acknowledged it (it may
// have arrived: resending it can make a duplicate). After a clean Disconnect the
// peer has read everything written before the Goodbye.
func (s *Service) Send(id NodeID, data []byte) error { return s.node.Send(id, data) }

// Refused returns how many connections, messages or requests the node refused or
// held back since it started, by reason: "max-connections", "pending-handshakes",
// "source-rate", "source-pending", "blacklist", "peer-rate", "rendezvous-rate",
// "beacon-rate".
func (s *Service) Refused() map[string]uint64 { return s.node.Refused() }

// Disconnect closes the connection to the peer with a Goodbye; PeerLost follows.
func (s *Service) Disconnect(id NodeID) error { return s.node.Disconnect(id) }

// Peers lists the connected peers.
func (s *Service) Peers() []PeerInfo { return s.node.Peers() }

// Traffic counts the messages and payload bytes (not TLS or framing) received and
// sent since New, over every peer session, ended ones included. A session's own
// counts, in Peers, go with it; these only grow.
func (s *Service) Traffic() Traffic { return s.node.Traffic() }

// Delivery counts what Send's promise did since the node started: sessions that
// resumed a stream after a fault and the messages they resent, and the messages
// given back in Undelivered events.
func (s *Service) Delivery() Delivery { return s.node.Delivery() }

// PolicyLists are a node's whitelist and blacklists at one moment (Service.Policy).
type PolicyLists = actors.PolicyLists

// Policy returns the node's whitelist and blacklists as they are now: Config's, with
// the changes Block, Unblock, BlockPrefix and UnblockPrefix made since.
func (s *Service) Policy() PolicyLists { return s.policy.Lists() }

// Block adds id to the blacklist, so that it is neither dialled nor accepted from now
// on, and closes the connection to it, if there is one, with a Goodbye (PeerLost
// follows). Blocking a node already blocked changes nothing. It fails for the zero
// NodeID and for this node's own.
func (s *Service) Block(id NodeID) error {
	switch {
	case id.IsZero():
		return fmt.Errorf("blocking: %w: zero NodeID", identity.ErrBadNodeID)
	case id == s.ID():
		return fmt.Errorf("blocking %s: that is this node's own NodeID", id.Short())
	}
	s.policy.Block(id)
	return s.disconnectBlocked(id)
}

// Unblock removes id from the blacklist and reports whether it was there. A node left
// out of a non-empty Whitelist stays refused. Connecting again is up to the peers
// (or Connect).
func (s *Service) Unblock(id NodeID) bool { return s.policy.Unblock(id) }

// BlockPrefix adds an IP prefix to the blacklist (see Config.BlacklistPrefixes) and
// closes, with a Goodbye, the connections of the peers connected from an address in
// it. It fails for an invalid prefix.
func (s *Service) BlockPrefix(p netip.Prefix) error {
	if _, err := s.policy.BlockPrefix(p); err != nil {
		return err
	}
	var errs []error
	for _, peer := range s.node.Peers() {
		if !s.policy.AllowedAddr(peer.Addr.Addr()) {
			errs = append(errs, s.disconnectBlocked(peer.ID))
		}
	}
	return errors.Join(errs...)
}

// UnblockPrefix removes the prefix from the blacklist and reports whether it was
// there. Only that prefix is removed (as BlacklistPrefixes lists it; IPv4-mapped
// prefixes are taken as IPv4): a wider or narrower one stays blocked.
func (s *Service) UnblockPrefix(p netip.Prefix) bool { return s.policy.UnblockPrefix(p) }

// disconnectBlocked closes the connection to a peer just blocked; a peer that is not
// connected, or a closed Service, is no error.
func (s *Service) disconnectBlocked(id NodeID) error {
	err := s.node.Disconnect(id)
	if err == nil || errors.Is(err, ErrNotConnected) || errors.Is(err, ErrClosed) {
		return nil
	}
	return fmt.Errorf("disconnecting %s after blocking it: %w", id.Short(), err)
}

// Events delivers what happens, in order. Read it steadily: while it is not read,
// received messages wait (up to MaxPendingMessages) and then peers are read no more.
// It is closed by Close.
func (s *Service) Events() <-chan Event { return s.node.Events() }

// Close says Goodbye to every peer (waiting up to ShutdownGrace for answers), stops
// every goroutine and closes the Events channel. Safe to call more than once.
func (s *Service) Close() error {
	s.node.Close(s.cfg.ShutdownGrace)
	if s.quic != nil {
		s.quic.Close()
	}
	if s.tcp != nil {
		s.tcp.Wait()
	}
	return s.closeCache()
}

// openCache opens the bootstrap cache named by cfg, or returns nil when there is no
// file to keep it in.
func openCache(cfg Config) (*bootstrap.Cache, error) {
	dir, name := cfg.DataDir, cfg.BootstrapFile
	if filepath.IsAbs(name) {
		dir, name = filepath.Dir(name), filepath.Base(name)
	} else if name != "" && dir != "" {
		dir, name = filepath.Split(filepath.Join(dir, name))
	}
	if dir == "" {
		return nil, nil
	}
	return bootstrap.Open(bootstrap.Config{
		Dir:       dir,
		FileName:  name,
		Max:       cfg.BootstrapMax,
		HardCoded: cfg.Contacts,
		Logger:    cfg.Log,
	})
}

// closeCache saves and unlocks the bootstrap cache, if there is one; the save error
// is logged and returned.
func (s *Service) closeCache() error {
	if s.cache == nil {
		return nil
	}
	err := s.cache.Close()
	if err != nil {
		s.cfg.Log.Error("saving the bootstrap cache failed", "file", s.cache.Path(), "err", err)
	}
	return err
}

// BootstrapEntries lists the contacts the bootstrap cache has learned, best first:
// nodes this node was directly connected to or heard of. Hard-coded Contacts are not
// listed. Nil without a cache (no DataDir and no absolute BootstrapFile).
func (s *Service) BootstrapEntries() []BootstrapEntry {
	if s.cache == nil {
		return nil
	}
	return s.cache.Entries()
}
