package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/crust-p2p/crust"
)

// Two NodeIDs: the bytes 1..32, and 32 bytes of 0xaa.
const (
	idA = "aebagbafaydqqcikbmga2dqpcaireeyuculbogazdinryhi6d4qa"
	idB = "vkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkva"
)

// customText sets every key to something other than its default.
const customText = `
data_dir = "/var/lib/crust-node"
listen_addresses = ["192.0.2.10", "2001:db8::10"]
listen_port = 0
protocols = ["quic"]
contacts = ["` + idA + `@tcp://192.0.2.1:5484,quic://192.0.2.1:5484"]
bootstrap_file = "/var/cache/crust-node/bootstrap.json"
bootstrap_max = 100
bootstrap_parallel = 2
bootstrap_peers = 3
beacon = true
beacon_port = 6000
beacon_addresses = ["192.0.2.255", "ff02::5483"]
announce_interval = "1m"
stun_servers = ["stun.example.org:3478"]
upnp = false
whitelist = ["` + idA + `"]
blacklist = ["` + idB + `"]
blacklist_prefixes = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
admin = "tcp://127.0.0.1:5485"
metrics_addr = "127.0.0.1:9464"

[limits]
handshake_timeout = "3s"
max_pending_handshakes = 8
max_frame_size = 65536
max_message_size = 60000
step_timeout = "2s"
keepalive_interval = "1s"
peer_timeout = "4s"
send_queue_messages = 10
send_queue_bytes = 100000
max_pending_messages = 20
max_pending_bytes = 200000
event_buffer = 16
shutdown_grace = "500ms"
max_connections = 100
source_rate = 2.5
source_burst = 5
peer_message_rate = -1
peer_byte_rate = 1000000
relay_rate = 3
beacon_reply_rate = -1
reconnect_for = "-1s"
`

func TestLoadEmptyIsDefault(t *testing.T) {
	for _, text := range []string{"", "\n", "# nothing set\n"} {
		c, err := Load(strings.NewReader(text), "crust.toml")
		if err != nil {
			t.Fatalf("Load(%q): %v", text, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Load(%q) = %+v, want Default() = %+v", text, c, Default())
		}
	}
}

func TestLoadCustom(t *testing.T) {
	c, err := Load(strings.NewReader(customText), "crust.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"stun.example.org:3478"}; !reflect.DeepEqual(c.StunServers, want) || c.UPnP {
		t.Errorf("stun_servers, upnp = %q, %v; want %q, false", c.StunServers, c.UPnP, want)
	}
	got, err := c.Service()
	if err != nil {
		t.Fatal(err)
	}
	contact, err := crust.ParseContact(idA + "@tcp://192.0.2.1:5484,quic://192.0.2.1:5484")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := crust.ParseNodeID(idA)
	b, _ := crust.ParseNodeID(idB)
	want := crust.Config{
		DataDir:              "/var/lib/crust-node",
		ListenAddrs:          []string{"192.0.2.10:0", "[2001:db8::10]:0"},
		Protocols:            []string{"quic"},
		StepTimeout:          2 * time.Second,
		MaxFrameSize:         65536,
		MaxMessageSize:       60000,
		HandshakeTimeout:     3 * time.Second,
		MaxPendingHandshakes: 8,
		Limits: crust.Limits{MaxConnections: 100, SourceRate: 2.5, SourceBurst: 5, PeerMessageRate: -1,
			PeerByteRate: 1e6, RelayRate: 3, BeaconReplyRate: -1},
		ReconnectFor:       -time.Second,
		KeepaliveInterval:  time.Second,
		PeerTimeout:        4 * time.Second,
		SendQueueMessages:  10,
		SendQueueBytes:     100000,
		EventBuffer:        16,
		MaxPendingMessages: 20,
		MaxPendingBytes:    200000,
		BeaconAddrs:        []netip.Addr{netip.MustParseAddr("192.0.2.255"), netip.MustParseAddr("ff02::5483")},
		BeaconPort:         6000,
		AnnounceInterval:   time.Minute,
		Contacts:           []crust.Contact{contact},
		BootstrapFile:      "/var/cache/crust-node/bootstrap.json",
		BootstrapMax:       100,
		BootstrapParallel:  2,
		BootstrapPeers:     3,
		StunServers:        []string{"stun.example.org:3478"},
		UPnPLease:          time.Hour,
		Whitelist:          []crust.NodeID{a},
		Blacklist:          []crust.NodeID{b},
		BlacklistPrefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"),
			netip.MustParsePrefix("198.51.100.7/32")},
		ShutdownGrace: 500 * time.Millisecond,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Service() =\n%+v\nwant\n%+v", got, want)
	}
	network, address, err := c.AdminAddr("/unused")
	if network != "tcp" || address != "127.0.0.1:5485" || err != nil {
		t.Errorf("AdminAddr = %q, %q, %v; want tcp, 127.0.0.1:5485", network, address, err)
	}
	if c.MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("metrics_addr = %q, want 127.0.0.1:9464", c.MetricsAddr)
	}
}

// TestLoadErrors checks that each mistake names its key and line, and says what is
// wrong.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		key  string
		line int
		msg  string // the whole message, or a part of it if it starts with "..."
	}{
		{"unknown key", "listen_port = 1\n\nlisten_prot = 2\n", "listen_prot", 3,
			`crust.toml:3: unknown key "listen_prot" (did you mean "listen_port"?)`},
		{"unknown key in a table", "[limits]\nhandshake_timout = \"1s\"\n", "limits.handshake_timout", 2,
			`crust.toml:2: unknown key "limits.handshake_timout" (did you mean "limits.handshake_timeout"?)`},
		{"key in the wrong table", "handshake_timeout = \"1s\"\n", "handshake_timeout", 1,
			`...(did you mean "limits.handshake_timeout"?)`},
		{"unknown table", "\n[limitz]\nx = 1\n", "limitz", 2, `crust.toml:2: unknown key "limitz" (did you mean "limits"?)`},
		{"keys are case-sensitive", "Listen_Port = 1\n", "Listen_Port", 1, `...unknown key "Listen_Port"`},
		{"port out of range", "\n\nlisten_port = 70000\n", "listen_port", 3,
			"crust.toml:3: listen_port: 70000 is out of range 0..65535"},
		{"negative port", "listen_port = -1\n", "listen_port", 1, "...-1 is out of range 0..65535"},
		{"beacon port 0", "beacon_port = 0\n", "beacon_port", 1, "...0 is out of range 1..65535"},
		{"bad duration", "[limits]\n\n\n\nhandshake_timeout = \"abc\"\n", "limits.handshake_timeout", 5,
			`crust.toml:5: limits.handshake_timeout: "abc" is not a duration like "10s" or "1m30s"`},
		{"duration as a number", "announce_interval = 30\n", "announce_interval", 1,
			`crust.toml:1: announce_interval: want a duration like "10s", not the integer 30`},
		{"zero duration", "[limits]\nstep_timeout = \"0s\"\n", "limits.step_timeout", 2, "...0s: want a duration above zero"},
		{"in an inline table", "limits = { peer_timeout = \"soon\" }\n", "limits.peer_timeout", 1, `..."soon" is not a duration`},
		{"bad contact", "contacts = [\n  \"nobody\",\n]\n", "contacts", 1, `...contacts: "nobody": contact "nobody": want id@`},
		{"bad NodeID", "whitelist = [\"abc\"]\n", "whitelist", 1, `crust.toml:1: whitelist: "abc": invalid node ID: 3 characters, want 52`},
		{"prefix not masked", "blacklist_prefixes = [\"192.0.2.7/24\"]\n", "blacklist_prefixes", 1,
			`crust.toml:1: blacklist_prefixes: "192.0.2.7/24" has address bits set past /24: did you mean "192.0.2.0/24" (the network) or "192.0.2.7/32" (the one address)?`},
		{"prefix not an IP", "\nblacklist_prefixes = [\"2001:db8::/32\", \"example.org/24\"]\n", "blacklist_prefixes", 2, `..."example.org/24" is not an IP prefix`},
		{"prefix too long", "blacklist_prefixes = [\"192.0.2.0/33\"]\n", "blacklist_prefixes", 1, `..."192.0.2.0/33" is not an IP prefix`},
		{"address to block with a zone", "blacklist_prefixes = [\"fe80::1%eth0\"]\n", "blacklist_prefixes", 1, `...has no zone (%eth0)`},
		{"unknown protocol", "protocols = [\"tcp\", \"udp\"]\n", "protocols", 1,
			`crust.toml:1: protocols: "udp" is not a protocol: want "tcp" or "quic"`},
		{"protocol twice", "protocols = [\"tcp\", \"tcp\"]\n", "protocols", 1, `..."tcp" is listed twice`},
		{"no protocol", "protocols = []\n", "protocols", 1, "...empty"},
		{"no listen address", "listen_addresses = []\n", "listen_addresses", 1, "...empty"},
		{"listen address not an IP", "listen_addresses = [\"localhost\"]\n", "listen_addresses", 1, `..."localhost" is not an IP address`},
		{"beacon address not multicast", "beacon_addresses = [\"fe80::1\"]\n", "beacon_addresses", 1, "...multicast"},
		{"stun server without port", "stun_servers = [\"stun.example.org\"]\n", "stun_servers", 1, "...want host:port"},
		{"upnp url not http", "upnp_url = \"ftp://192.0.2.1/rootDesc.xml\"\n", "upnp_url", 1, "...want an http:// URL"},
		{"admin not on loopback", "admin = \"tcp://0.0.0.0:5485\"\n", "admin", 1, `...admin: "tcp://0.0.0.0:5485": "0.0.0.0" is not a loopback address`},
		{"admin by name", "admin = \"tcp://localhost:5485\"\n", "admin", 1, "...is not a loopback address"},
		{"admin unix:// relative", "admin = \"unix://admin.sock\"\n", "admin", 1, `...write "unix:admin.sock"`},
		{"admin unknown", "admin = \"http://127.0.0.1\"\n", "admin", 1, `...want "off"`},
		{"metrics without port", "metrics_addr = \"127.0.0.1\"\n", "metrics_addr", 1,
			`crust.toml:1: metrics_addr: "127.0.0.1": want host:port, like "127.0.0.1:9464"`},
		{"metrics as a URL", "metrics_addr = \"http://127.0.0.1:9464/metrics\"\n", "metrics_addr", 1, "...want host:port"},
		{"metrics port by name", "metrics_addr = \"127.0.0.1:http\"\n", "metrics_addr", 1, `...port "http" is not a number from 0 to 65535`},
		{"metrics port out of range", "metrics_addr = \"[::1]:65536\"\n", "metrics_addr", 1, "...is not a number from 0 to 65535"},
		{"metrics host", "metrics_addr = \"no such host:9464\"\n", "metrics_addr", 1, `..."no such host" is neither an IP address nor a host name`},
		{"wrong type", "listen_port = \"x\"\n", "listen_port", 1, `crust.toml:1: listen_port: want an integer, not the string "x"`},
		{"wrong element type", "contacts = [\"a\", 2]\n", "contacts", 1, "...element 2 is the integer 2, not a string"},
		{"not a table", "limits = 5\n", "limits", 1, "...want a table, not the integer 5"},
		{"array of tables", "[[limits]]\n", "limits", 1, "...want a table, not an array of tables"},
		{"message above frame", "[limits]\nmax_frame_size = 2048\nmax_message_size = 2040\n", "limits.max_message_size", 3,
			"...2040 is out of range 1..2032"},
		{"frame too small", "[limits]\nmax_frame_size = 16\n", "limits.max_frame_size", 2, "...out of range 1024.."},
		{"count zero", "bootstrap_peers = 0\n", "bootstrap_peers", 1, "...0 is too small: want at least 1"},
		// peer_timeout is left at its default: the error points at its table.
		{"peer timeout below keepalive", "[limits]\nkeepalive_interval = \"20s\"\n", "limits.peer_timeout", 1,
			"...12s is not longer than keepalive_interval (20s)"},
		{"line after a multi-line string", "data_dir = '''\nx = 1\n'''\nlisten_port = 1e3\n", "listen_port", 4,
			"...want an integer, not the number 1000"},
		{"syntax error", "listen_port = 5484\nlisten_addresses = [\n", "", 2, "crust.toml:2: unexpected EOF"},
		{"duplicate key", "beacon = true\nbeacon = false\n", "", 2, "crust.toml:2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.text), "crust.toml")
			if err == nil {
				t.Fatalf("Load(%q) = nil error", tt.text)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load(%q) = %v (%T), want an *Error", tt.text, err, err)
			}
			if e.Key != tt.key || e.Line != tt.line || e.File != "crust.toml" {
				t.Errorf("error at %s:%d key %q, want crust.toml:%d key %q (%v)", e.File, e.Line, e.Key, tt.line, tt.key, err)
			}
			if part, ok := strings.CutPrefix(tt.msg, "..."); ok {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			} else if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
		})
	}
}

// TestLoadEveryError checks that Load reports every mistake, in the order of the
// file.
func TestLoadEveryError(t *testing.T) {
	text := "foo = 1\nlisten_port = 70000\nbar = 2\n[limits]\nbaz = 3\npeer_timeout = \"x\"\n"
	_, err := Load(strings.NewReader(text), "-")
	want := strings.Join([]string{
		`<stdin>:1: unknown key "foo"`,
		`<stdin>:3: unknown key "bar"`,
		`<stdin>:5: unknown key "limits.baz"`,
		`<stdin>:6: limits.peer_timeout: "x" is not a duration like "10s" or "1m30s"`,
	}, "\n")
	// The shape of the file is checked before values, so listen_port waits.
	if err == nil || err.Error() != want {
		t.Errorf("Load = %v\nwant\n%s", err, want)
	}
	var errs interface{ Unwrap() []error }
	if !errors.As(err, &errs) || len(errs.Unwrap()) != 4 {
		t.Fatalf("Load = %v, want 4 joined errors", err)
	}
	for _, e := range errs.Unwrap() {
		if !errors.Is(e, ErrUnknownKey) && !strings.Contains(e.Error(), "peer_timeout") {
			t.Errorf("%v: does not wrap ErrUnknownKey", e)
		}
	}
}

func TestLoadReadError(t *testing.T) {
	_, err := Load(iotest.ErrReader(errors.New("disk on fire")), "/etc/crust.toml")
	if err == nil || !strings.Contains(err.Error(), "/etc/crust.toml") || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Load = %v, want the file name and the cause", err)
	}
}
