package config

import (
	"fmt"
	"time"
)

// Config is crust-node's configuration file. Each field's toml tag is its key; the
// text WriteDefault prints explains each key to the user.
type Config struct {
	// DataDirectory (data_dir) holds the node key (node.key), the bootstrap cache and
	// the admin socket. Default: "", resolved by DataDir.
	DataDirectory string `toml:"data_dir"`
	// ListenAddresses (listen_addresses) are the IP addresses to listen on, TCP and
	// QUIC alike. Default: ["0.0.0.0", "::"], every address of the host.
	ListenAddresses []string `toml:"listen_addresses"`
	// ListenPort (listen_port) is the TCP and UDP port on every listen address; 0
	// picks a free port at each start. Default: 5484.
	ListenPort int `toml:"listen_port"`
	// Protocols (protocols) are the transports, "tcp" and "quic". Default: both.
	Protocols []string `toml:"protocols"`
	// Contacts (contacts) are hard-coded contacts in crust.ParseContact's text form,
	// tried first at each start. Default: none.
	Contacts []string `toml:"contacts"`
	// BootstrapFile (bootstrap_file) is the bootstrap cache, relative to the data
	// directory unless absolute. Default: "bootstrap.json".
	BootstrapFile string `toml:"bootstrap_file"`
	// BootstrapMax (bootstrap_max) bounds the contacts the cache learns. Default: 1500.
	BootstrapMax int `toml:"bootstrap_max"`
	// BootstrapParallel (bootstrap_parallel) is how many contacts are dialled at once
	// at start. Default: 4.
	BootstrapParallel int `toml:"bootstrap_parallel"`
	// BootstrapPeers (bootstrap_peers) is how many connected peers end the bootstrap.
	// Default: 8.
	BootstrapPeers int `toml:"bootstrap_peers"`
	// Beacon (beacon) turns LAN discovery on. Default: true.
	Beacon bool `toml:"beacon"`
	// BeaconPort (beacon_port) is the beacon's UDP port. Default: 5483.
	BeaconPort int `toml:"beacon_port"`
	// BeaconAddresses (beacon_addresses) are where the beacon sends: IPv4 broadcast
	// addresses and IPv6 multicast groups. Default: none, meaning the LAN's
	// broadcast addresses, found when Service is called.
	BeaconAddresses []string `toml:"beacon_addresses"`
	// AnnounceInterval (announce_interval) is how often the beacon announces this
	// node. Default: 30 s.
	AnnounceInterval Duration `toml:"announce_interval"`
	// StunServers (stun_servers) are STUN servers, "host:port". Default: none.
	StunServers []string `toml:"stun_servers"`
	// UPnP (upnp) allows port mapping on the router. Default: true.
	UPnP bool `toml:"upnp"`
	// UPnPURL (upnp_url) is the router's UPnP root description URL; "" finds it by
	// SSDP. Default: "".
	UPnPURL string `toml:"upnp_url"`
	// UPnPLease (upnp_lease) is the lease asked for each mapping; it is renewed at
	// half. Default: 1 h.
	UPnPLease Duration `toml:"upnp_lease"`
	// FirewallHops (firewall_hops) is the hop limit of the SYN that opens our own
	// firewall before a TCP punch; 0 picks it per path. Default: 0.
	FirewallHops int `toml:"firewall_hops"`
	// Whitelist (whitelist), if not empty, is the only NodeIDs this node talks to.
	// Default: none, everyone.
	Whitelist []string `toml:"whitelist"`
	// Blacklist (blacklist) are NodeIDs refused; it wins over Whitelist.
	// Default: none.
	Blacklist []string `toml:"blacklist"`
	// BlacklistPrefixes (blacklist_prefixes) are IP prefixes refused, "192.0.2.0/24"
	// or "2001:db8::/32"; a bare address is a prefix of one address. Default: none.
	BlacklistPrefixes []string `toml:"blacklist_prefixes"`
	// Admin (admin) is the admin endpoint: "" for admin.sock in the data directory,
	// "unix:PATH", "tcp://127.0.0.1:PORT" or "off"; see AdminAddr. Default: "".
	Admin string `toml:"admin"`
	// MetricsAddr (metrics_addr) is where the Prometheus endpoint (GET /metrics)
	// listens, "host:port" as net.Listen takes it; see CheckMetricsAddr. Default: "",
	// off.
	MetricsAddr string `toml:"metrics_addr"`
	// Limits ([limits]) are the library's timeouts and bounds.
	Limits Limits `toml:"limits"`
}

// Limits are the [limits] table: timeouts and bounds of crust.Config, with the same
// meaning and defaults.
type Limits struct {
	// HandshakeTimeout (handshake_timeout) bounds a connection's handshake.
	// Default: 10 s.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// MaxPendingHandshakes (max_pending_handshakes) caps inbound handshakes in
	// progress per listener. Default: 64.
	MaxPendingHandshakes int `toml:"max_pending_handshakes"`
	// MaxFrameSize (max_frame_size) bounds one frame on the wire, in bytes.
	// Default: 16 MiB.
	MaxFrameSize int `toml:"max_frame_size"`
	// MaxMessageSize (max_message_size) bounds one message, in bytes; 0 means
	// MaxFrameSize - 16. Default: 0.
	MaxMessageSize int `toml:"max_message_size"`
	// StepTimeout (step_timeout) bounds each step of the connection ladder.
	// Default: 5 s.
	StepTimeout Duration `toml:"step_timeout"`
	// KeepaliveInterval (keepalive_interval) is how often a peer is pinged.
	// Default: 3 s.
	KeepaliveInterval Duration `toml:"keepalive_interval"`
	// PeerTimeout (peer_timeout) is how long a peer may stay silent before it is
	// lost. Default: 12 s.
	PeerTimeout Duration `toml:"peer_timeout"`
	// SendQueueMessages (send_queue_messages) bounds the messages queued per peer.
	// Default: 4096.
	SendQueueMessages int `toml:"send_queue_messages"`
	// SendQueueBytes (send_queue_bytes) bounds the bytes queued per peer.
	// Default: 16 MiB.
	SendQueueBytes int `toml:"send_queue_bytes"`
	// MaxPendingMessages (max_pending_messages) bounds received messages the
	// daemon has not taken yet. Default: 4096.
	MaxPendingMessages int `toml:"max_pending_messages"`
	// MaxPendingBytes (max_pending_bytes) bounds their bytes. Default: 64 MiB.
	MaxPendingBytes int `toml:"max_pending_bytes"`
	// EventBuffer (event_buffer) is the capacity of the event channel.
	// Default: 1024.
	EventBuffer int `toml:"event_buffer"`
	// ShutdownGrace (shutdown_grace) is how long closing waits for peers to answer
	// Goodbye. Default: 2 s.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// MaxConnections (max_connections) caps the node's connections; -1: no cap.
	// Default: 4096.
	MaxConnections int `toml:"max_connections"`
	// SourceRate (source_rate) and SourceBurst (source_burst) ration inbound
	// connections per IP address, per second; -1: no limit. Default: 16, 64.
	SourceRate  float64 `toml:"source_rate"`
	SourceBurst int     `toml:"source_burst"`
	// PeerMessageRate (peer_message_rate) and PeerByteRate (peer_byte_rate) bound what
	// one peer may send per second; -1: no limit. Default: 1,000,000 and 1 GiB.
	PeerMessageRate float64 `toml:"peer_message_rate"`
	PeerByteRate    float64 `toml:"peer_byte_rate"`
	// RelayRate (relay_rate) bounds the rendezvous frames one peer may have this node
	// relay per second; -1: no limit. Default: 20.
	RelayRate float64 `toml:"relay_rate"`
	// BeaconReplyRate (beacon_reply_rate) bounds beacon answers per second; -1: no
	// limit. Default: 10.
	BeaconReplyRate float64 `toml:"beacon_reply_rate"`
	// ReconnectFor (reconnect_for) is how long a peer lost without a Goodbye is
	// redialled; "-1s": never. Default: 1 min.
	ReconnectFor Duration `toml:"reconnect_for"`
}

// Default returns the configuration of a file with no keys. Its lists are empty, not
// nil, as Load leaves them after reading "key = []", and each call returns new
// ones.
func Default() Config {
	return Config{
		ListenAddresses:   []string{"0.0.0.0", "::"},
		ListenPort:        5484,
		Protocols:         []string{"tcp", "quic"},
		Contacts:          []string{},
		BootstrapFile:     "bootstrap.json",
		BootstrapMax:      1500,
		BootstrapParallel: 4,
		BootstrapPeers:    8,
		Beacon:            true,
		BeaconPort:        5483,
		BeaconAddresses:   []string{},
		AnnounceInterval:  Duration(30 * time.Second),
		StunServers:       []string{},
		UPnP:              true,
		UPnPLease:         Duration(time.Hour),
		Whitelist:         []string{},
		Blacklist:         []string{},
		BlacklistPrefixes: []string{},
		Limits: Limits{
			HandshakeTimeout:     Duration(10 * time.Second),
			MaxPendingHandshakes: 64,
			MaxFrameSize:         16 << 20,
			StepTimeout:          Duration(5 * time.Second),
			KeepaliveInterval:    Duration(3 * time.Second),
			PeerTimeout:          Duration(12 * time.Second),
			SendQueueMessages:    4096,
			SendQueueBytes:       16 << 20,
			MaxPendingMessages:   4096,
			MaxPendingBytes:      64 << 20,
			EventBuffer:          1024,
			ShutdownGrace:        Duration(2 * time.Second),
			MaxConnections:       4096,
			SourceRate:           16,
			SourceBurst:          64,
			PeerMessageRate:      1e6,
			PeerByteRate:         1 << 30,
			RelayRate:            20,
			BeaconReplyRate:      10,
			ReconnectFor:         Duration(time.Minute),
		},
	}
}

// Duration is a time.Duration written in TOML as a string, "10s" or "1m30s".
type Duration time.Duration

// String returns d as time.Duration does, "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText returns d's text form, which UnmarshalText reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration as time.ParseDuration does.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"10s\" or \"1m30s\"", text)
	}
	*d = Duration(v)
	return nil
}
