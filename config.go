package crust

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/crust-p2p/crust/actors"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Config configures a Service. The zero value is usable: every field states its
// default, and a field left zero takes it.
type Config struct {
	// DataDir holds the node key (node.key, mode 0600), created on first start, so the
	// NodeID survives restarts. Default: "" keeps an in-memory key, a new NodeID each
	// start (tests, demos).
	DataDir string
	// Identity, if set, is used instead of the key in DataDir.
	Identity *identity.Identity
	// ListenAddrs are the addresses to listen on, "ip:port", for TCP and QUIC (UDP)
	// alike. A port of 0 picks a free port, the same number on each address and for
	// both protocols where possible. Default: ["0.0.0.0:0", "[::]:0"]: every IPv4 and
	// IPv6 address the host has.
	ListenAddrs []string
	// Protocols are the transports to use, listening and dialling: "tcp", "quic".
	// A node with one of them still talks to nodes with both. Default:
	// ["tcp", "quic"].
	Protocols []string
	// StepTimeout bounds each step of the connection ladder (TCP direct, UPnP, TCP
	// punch, QUIC direct, QUIC punch), so a blackholed path costs at most this before
	// the next step starts. Default: 5 s.
	StepTimeout time.Duration
	// MaxFrameSize bounds one frame on the wire in bytes; a peer that sends a larger
	// one is disconnected. Default: 16 MiB.
	MaxFrameSize int
	// MaxMessageSize bounds one message passed to Send. Default: MaxFrameSize - 16.
	MaxMessageSize int
	// HandshakeTimeout bounds TCP connect, TLS handshake and Hello, and the wait for
	// the peer to settle which connection is live. Default: 10 s.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes caps inbound handshakes in progress per listener; more
	// connections are closed at once. Default: 64.
	MaxPendingHandshakes int
	// Limits bound connections (MaxConnections), connection attempts per source IP,
	// what one peer may send per second, relayed rendezvous requests and beacon
	// replies; a zero field takes its default, a negative one turns that limit off.
	// See Limits. Over a limit the node refuses early and counts it (Refused).
	Limits Limits
	// KeepaliveInterval is how often a peer is pinged (liveness and RTT). Default: 3 s.
	KeepaliveInterval time.Duration
	// ReconnectFor is how long the node tries to reconnect to a peer whose connection
	// failed without a Goodbye (a timeout, a reset: a fault, not the peer leaving),
	// redialling with backoff from half a second to 30 s; PeerLost.Reconnecting
	// says so. Meanwhile the messages the fault left unconfirmed are held: if the
	// peer still knows how far it got, the next session resends what it lacks, so
	// each arrives once; otherwise, or once reconnecting stops, they come back in
	// Undelivered. The node also remembers, for this long (at least a minute), how
	// far it got with a faulted peer's messages, so that the peer can resume. Default:
	// 1 minute; negative: never.
	ReconnectFor time.Duration
	// PeerTimeout is how long a peer may stay silent before it is lost. A dead peer is
	// reported within PeerTimeout + KeepaliveInterval. Default: 12 s.
	PeerTimeout time.Duration
	// SendQueueMessages bounds the messages queued per peer. Default: 4096.
	SendQueueMessages int
	// SendQueueBytes bounds the bytes queued per peer; one larger message is still
	// accepted into an empty queue. Default: 16 MiB.
	SendQueueBytes int
	// SendBlocks makes Send wait for room in a full queue instead of returning
	// ErrQueueFull. Default: false.
	SendBlocks bool
	// EventBuffer is the capacity of the Events channel. Default: 1024.
	EventBuffer int
	// MaxPendingMessages bounds received messages held beyond the Events channel;
	// when reached, the node stops reading from peers until the application catches
	// up (TCP flow control slows the senders). Default: 4096.
	MaxPendingMessages int
	// MaxPendingBytes bounds the payload bytes of those held messages likewise.
	// Default: 64 MiB.
	MaxPendingBytes int
	// OnMessage, if set, receives every message instead of Events: the fast path. It
	// runs on the connection's reader goroutine, in order for each peer, concurrently
	// for different peers, and must return quickly: while it runs that peer is not
	// read (TCP then slows the sender). A peer's PeerConnected is queued on Events
	// before its first message reaches OnMessage, and PeerLost after its last. It
	// must not call Close (Close waits for it). Message.Data is lent, not given:
	// it is valid only until OnMessage returns (the next message is read into the
	// same buffer), so copy what you keep. That saves an allocation and a copy per
	// message.
	// Default: nil, messages arrive as Message events.
	OnMessage func(Message)
	// BeaconAddrs are where the LAN beacon broadcasts (UDP): IPv4 broadcast
	// addresses and IPv6 link-local multicast groups (beacon.DefaultGroup, sent on
	// every multicast interface); empty turns the beacon off. A daemon on a real LAN
	// passes 255.255.255.255, each interface's directed broadcast
	// (beacon.DirectedBroadcasts) and beacon.DefaultGroup; tests and demos on one host
	// pass 127.255.255.255. Nodes heard on the beacon are connected to. Default: none.
	BeaconAddrs []netip.Addr
	// BeaconPort is the beacon's UDP port, shared by every node on the host.
	// Default: 5483.
	BeaconPort uint16
	// AnnounceInterval is how often the beacon announces this node; it also queries
	// once at start. Default: 30 s.
	AnnounceInterval time.Duration
	// Contacts are hard-coded contacts (Crust's hard-coded bootstrap list): always
	// tried first at start, never evicted from the bootstrap cache. Default: none.
	Contacts []Contact
	// BootstrapFile is the bootstrap cache file: contacts of nodes this node was
	// directly connected to, ranked by recent success, tried at start after Contacts.
	// A relative name is inside DataDir. Default: "bootstrap.json" in DataDir; with
	// no DataDir there is no file and only Contacts and the beacon bootstrap.
	BootstrapFile string
	// BootstrapMax bounds the contacts the cache learns (Crust's 1500). Default: 1500.
	BootstrapMax int
	// BootstrapParallel is how many bootstrap contacts are dialled at once at start.
	// Default: 4.
	BootstrapParallel int
	// BootstrapPeers is how many connected peers end the bootstrap: once that many
	// are up, the remaining contacts are not dialled. Default: 8.
	BootstrapPeers int
	// Whitelist, if not empty, is the only NodeIDs this node connects to or accepts:
	// others are refused before any state is kept for them. Default: everyone.
	Whitelist []NodeID
	// Blacklist are NodeIDs refused, dialled or not; it wins over Whitelist.
	// Default: none.
	Blacklist []NodeID
	// BlacklistPrefixes are IP prefixes ("192.0.2.0/24", "2001:db8::/32") refused:
	// connections from an address in them are closed before the TLS handshake, and
	// addresses in them are not dialled, whatever the NodeID. IPv4-mapped IPv6
	// addresses count as IPv4. Service.BlockPrefix adds to them at run time.
	// Default: none.
	BlacklistPrefixes []netip.Prefix
	// StunServers are STUN servers, "host:port", asked for our external endpoints
	// and the NAT's mapping behaviour: over UDP from the QUIC socket and over TCP from
	// the TCP listen port, so the mappings found are the ones peers can use; at start,
	// every NATRecheck, and when peers start seeing us at a new address. Default:
	// none (crust asks no public server unless told to; peers' address reflection
	// works without STUN).
	StunServers []string
	// NATRecheck is how often the STUN servers are asked again. Default: 5 min.
	NATRecheck time.Duration
	// UPnP turns on port mapping on the LAN's Internet gateway (UPnP IGD): TCP and
	// UDP mappings for the IPv4 listen port, renewed at half their lease, re-created
	// after a gateway restart, deleted by Close; peers reach us through them (ladder
	// step tcp-upnp). It searches the LAN with SSDP multicast. Default: off (the
	// crust-node daemon turns it on).
	UPnP bool
	// UPnPRootURL, if set, is the gateway's root description URL
	// ("http://192.168.1.1:2189/rootDesc.xml"): no SSDP search. Default: search.
	UPnPRootURL string
	// UPnPLease is the lease asked for each mapping. Default: 1 h.
	UPnPLease time.Duration
	// FirewallHops is the hop limit (IPv4 TTL, IPv6 hop limit) of the SYN that opens
	// our own stateful firewall before a TCP punch, sent when STUN says we have no NAT
	// (SocketSynergy): it must pass our firewall and die before the peer's side, which
	// could answer it with a reset that closes the hole again. Default: 0, chosen per
	// path: 2 (past our first router), fewer if the peer is nearer.
	FirewallHops int
	// ShutdownGrace is how long Close waits for peers to answer Goodbye. Default: 2 s.
	ShutdownGrace time.Duration
	// Log receives the node's logs. Default: slog.Default().
	Log *slog.Logger
	// Net opens sockets. Default: the operating system (transport.OSNet).
	Net transport.Net
	// Clock tells the time. Default: the system clock.
	Clock transport.Clock
}

func (c *Config) setDefaults() error {
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"0.0.0.0:0", "[::]:0"}
	}
	if len(c.Protocols) == 0 {
		c.Protocols = []string{"tcp", "quic"}
	}
	for _, p := range c.Protocols {
		if p != "tcp" && p != "quic" {
			return fmt.Errorf("config: protocol %q: want \"tcp\" or \"quic\"", p)
		}
	}
	for i, p := range c.BlacklistPrefixes {
		if !p.IsValid() {
			return fmt.Errorf("config: BlacklistPrefixes[%d] is not a valid prefix; want e.g. netip.MustParsePrefix(\"192.0.2.0/24\")", i)
		}
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = 16 << 20
	}
	if c.MaxMessageSize <= 0 || c.MaxMessageSize > c.MaxFrameSize-16 {
		c.MaxMessageSize = c.MaxFrameSize - 16
	}
	if c.BeaconPort == 0 {
		c.BeaconPort = 5483
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Net == nil {
		c.Net = transport.OSNet{}
	}
	if c.Clock == nil {
		c.Clock = transport.SystemClock{}
	}
	return nil
}

func (c *Config) protocol(name string) bool { return slices.Contains(c.Protocols, name) }

// Limits bound what peers and strangers can make a node do: Config.Limits.
type Limits = actors.Limits
