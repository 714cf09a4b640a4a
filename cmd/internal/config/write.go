package config

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// header opens the file WriteDefault writes.
const header = `# crust-node configuration (TOML). Every key is shown with its default value;
# a key left out keeps its default.
`

// keyHelp says what each key means, for WriteDefault: one or two lines each, by
// dotted key. Tables have one too.
var keyHelp = map[string]string{
	"data_dir": `Where the node key (node.key), the bootstrap cache and the admin socket live.
Empty: $XDG_DATA_HOME/crust-node, else ~/.local/share/crust-node.`,
	"listen_addresses": `IP addresses to listen on, TCP and QUIC alike. "0.0.0.0" and "::" are every
IPv4 and IPv6 address of the host.`,
	"listen_port": `TCP and UDP port on every listen address. 0 picks a random free port at each
start: harder to trace, but peers cannot reach this node at a known port.`,
	"protocols": `Transports to listen and dial with: "tcp", "quic" or both.`,
	"contacts": `Hard-coded contacts, tried first at each start, like
"NODEID@tcp://192.0.2.1:5484,quic://192.0.2.1:5484".`,
	"bootstrap_file":     `Bootstrap cache: contacts of former peers, tried at start. Relative to data_dir.`,
	"bootstrap_max":      `How many contacts the bootstrap cache keeps.`,
	"bootstrap_parallel": `How many bootstrap contacts are dialled at once at start.`,
	"bootstrap_peers":    `The bootstrap stops dialling once this many peers are connected.`,
	"beacon":             `LAN discovery: announce this node on the LAN and connect to the nodes heard.`,
	"beacon_port":        `UDP port of the LAN beacon; the same on every node of the LAN.`,
	"beacon_addresses": `Where the beacon sends: IPv4 broadcast addresses, IPv6 multicast groups.
Empty: 255.255.255.255, each interface's directed broadcast and ff02::5483.`,
	"announce_interval": `How often the beacon announces this node.`,
	"stun_servers": `STUN servers, "host:port", asked (UDP and TCP) for this node's public address and
the NAT's behaviour. Empty: none; peers still tell us how they see us.`,
	"upnp":       `Ask the LAN's router (UPnP IGD, found by SSDP) to forward listen_port to this node.`,
	"upnp_url":   `The router's UPnP root description URL; empty: find it by SSDP.`,
	"upnp_lease": `Lease asked for each UPnP mapping; renewed at half, deleted at stop.`,
	"firewall_hops": `Hop limit of the SYN that opens this host's own firewall before a TCP hole punch
(no NAT, a stateful firewall): past the firewall, short of the peer. 0: chosen per path.`,
	"whitelist": `NodeIDs: if not empty, the only nodes this node connects to or accepts.`,
	"blacklist": `NodeIDs never connected to nor accepted, even if in whitelist.`,
	"blacklist_prefixes": `IP prefixes ("192.0.2.0/24", "2001:db8::/32") or addresses never connected to nor
accepted from, whatever the NodeID. "crust-node block" adds to them at run time.`,
	"admin": `Admin endpoint. Empty: admin.sock in data_dir; "unix:PATH" (relative to data_dir),
"unix:///ABSOLUTE/PATH", "tcp://127.0.0.1:PORT" (loopback only) or "off".`,
	"metrics_addr": `Prometheus metrics at http://ADDR/metrics, like "127.0.0.1:9464" (no authentication:
keep it on loopback or a private network). Empty: off.`,
	"limits": `Timeouts and bounds of the connections. Durations are like "10s", "1m30s" or
"500ms"; sizes are in bytes.`,
	"limits.handshake_timeout":      `Bound on connecting, the TLS handshake and Hello of one connection.`,
	"limits.max_pending_handshakes": `Inbound handshakes at once per listener; more connections are closed at once.`,
	"limits.max_frame_size":         `Largest frame on the wire; a peer sending a larger one is disconnected.`,
	"limits.max_message_size":       `Largest message this node sends. 0: max_frame_size - 16.`,
	"limits.step_timeout":           `Bound on each step of the connection ladder: direct, UPnP, hole punch.`,
	"limits.keepalive_interval":     `How often a connected peer is pinged.`,
	"limits.peer_timeout":           `How long a peer may stay silent before it is lost; above keepalive_interval.`,
	"limits.send_queue_messages":    `Messages queued for sending, per peer.`,
	"limits.send_queue_bytes":       `Bytes queued for sending, per peer.`,
	"limits.max_pending_messages":   `Received messages held for the daemon before it stops reading from peers.`,
	"limits.max_pending_bytes":      `Bytes of those held messages.`,
	"limits.event_buffer":           `Capacity of the event channel from the library to the daemon.`,
	"limits.shutdown_grace":         `How long stopping waits for peers to answer Goodbye.`,
	"limits.max_connections":        `Connections at most, both directions; -1: no cap.`,
	"limits.source_rate":            `Inbound connections per second from one IP address; -1: no limit.`,
	"limits.source_burst":           `Bursts allowed above source_rate.`,
	"limits.peer_message_rate":      `Messages per second one peer may send; beyond, it is read no faster; -1: no limit.`,
	"limits.peer_byte_rate":         `Bytes per second one peer may send; -1: no limit.`,
	"limits.relay_rate":             `Rendezvous frames per second one peer may have this node relay; -1: no limit.`,
	"limits.beacon_reply_rate":      `Beacon queries answered per second; -1: no limit.`,
	"limits.reconnect_for":          `How long a peer lost without a Goodbye is redialled; "-1s": never.`,
}

// WriteDefault writes the default configuration as TOML: every key with its default
// value, under a comment that says what it means. Load reads it back to Default.
func WriteDefault(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(header)
	if err := writeTable(&b, reflect.ValueOf(Default()), nil); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeTable writes the fields of the struct v, the table at path: its keys first,
// then its tables, as TOML requires.
func writeTable(b *bytes.Buffer, v reflect.Value, path toml.Key) error {
	var tables []int
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("toml")
		if v.Field(i).Kind() == reflect.Struct {
			tables = append(tables, i)
			continue
		}
		if err := writeHelp(b, append(slices.Clip(path), name)); err != nil {
			return err
		}
		if err := toml.NewEncoder(b).Encode(map[string]any{name: v.Field(i).Interface()}); err != nil {
			return err
		}
	}
	for _, i := range tables {
		key := append(slices.Clip(path), v.Type().Field(i).Tag.Get("toml"))
		if err := writeHelp(b, key); err != nil {
			return err
		}
		fmt.Fprintf(b, "[%s]\n", key)
		if err := writeTable(b, v.Field(i), key); err != nil {
			return err
		}
	}
	return nil
}

// writeHelp writes a blank line and the help of key as comments.
func writeHelp(b *bytes.Buffer, key toml.Key) error {
	help, ok := keyHelp[key.String()]
	if !ok {
		return fmt.Errorf("config: no help for key %s", key)
	}
	b.WriteString("\n")
	for line := range strings.Lines(help) {
		b.WriteString("# " + strings.TrimSuffix(line, "\n") + "\n")
	}
	return nil
}
