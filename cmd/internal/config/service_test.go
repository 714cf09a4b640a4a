package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust/beacon"
)

func TestServiceDefault(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_DATA_HOME", xdg)
	got, err := Default().Service()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(xdg, "crust-node"); got.DataDir != want {
		t.Errorf("DataDir = %q, want %q", got.DataDir, want)
	}
	if want := []string{"0.0.0.0:5484", "[::]:5484"}; !slices.Equal(got.ListenAddrs, want) {
		t.Errorf("ListenAddrs = %q, want %q", got.ListenAddrs, want)
	}
	if want := []string{"tcp", "quic"}; !slices.Equal(got.Protocols, want) {
		t.Errorf("Protocols = %q, want %q", got.Protocols, want)
	}
	// The beacon is on with no addresses: the LAN's, from the host's interfaces.
	if !slices.Contains(got.BeaconAddrs, netip.MustParseAddr("255.255.255.255")) || !slices.Contains(got.BeaconAddrs, beacon.DefaultGroup) {
		t.Errorf("BeaconAddrs = %v, want 255.255.255.255 and %v among them", got.BeaconAddrs, beacon.DefaultGroup)
	}
	if got.BeaconPort != 5483 || got.AnnounceInterval != 30*time.Second || got.BootstrapFile != "bootstrap.json" ||
		got.BootstrapMax != 1500 || got.BootstrapParallel != 4 || got.BootstrapPeers != 8 {
		t.Errorf("beacon and bootstrap: %+v", got)
	}
	if got.HandshakeTimeout != 10*time.Second || got.MaxPendingHandshakes != 64 || got.MaxFrameSize != 16<<20 ||
		got.MaxMessageSize != 0 || got.StepTimeout != 5*time.Second || got.KeepaliveInterval != 3*time.Second ||
		got.PeerTimeout != 12*time.Second || got.SendQueueMessages != 4096 || got.SendQueueBytes != 16<<20 ||
		got.MaxPendingMessages != 4096 || got.MaxPendingBytes != 64<<20 || got.EventBuffer != 1024 ||
		got.ShutdownGrace != 2*time.Second {
		t.Errorf("limits: %+v", got)
	}
	if got.Contacts != nil || got.Whitelist != nil || got.Blacklist != nil || got.BlacklistPrefixes != nil {
		t.Errorf("Contacts, Whitelist, Blacklist, BlacklistPrefixes = %v, %v, %v, %v; want none", got.Contacts, got.Whitelist, got.Blacklist, got.BlacklistPrefixes)
	}
}

func TestServiceBeaconOff(t *testing.T) {
	c := Default()
	c.DataDirectory = t.TempDir()
	c.Beacon = false
	c.BeaconAddresses = []string{"192.0.2.255"}
	got, err := c.Service()
	if err != nil {
		t.Fatal(err)
	}
	if got.BeaconAddrs != nil {
		t.Errorf("BeaconAddrs = %v with beacon = false, want none", got.BeaconAddrs)
	}
}

// TestServiceChecks checks that a Config built by hand is checked too.
func TestServiceChecks(t *testing.T) {
	c := Default()
	c.DataDirectory = t.TempDir()
	c.ListenPort = 70000
	c.Limits.ShutdownGrace = 0
	_, err := c.Service()
	want := "listen_port: 70000 is out of range 0..65535\n" +
		`limits.shutdown_grace: 0s: want a duration above zero, like "10s"`
	if err == nil || err.Error() != want {
		t.Fatalf("Service() = %v, want\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Key != "listen_port" || e.File != "" || e.Line != 0 {
		t.Errorf("Service() = %#v, want an *Error at key listen_port", e)
	}
}

func TestDataDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name    string
		dataDir string
		xdg     string
		want    string
	}{
		{"set", "/srv/crust", "/xdg", "/srv/crust"},
		{"XDG_DATA_HOME", "", "/xdg", "/xdg/crust-node"},
		{"relative XDG_DATA_HOME is ignored", "", "xdg", filepath.Join(home, ".local/share/crust-node")},
		{"home", "", "", filepath.Join(home, ".local/share/crust-node")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			c := Default()
			c.DataDirectory = tt.dataDir
			got, err := c.DataDir()
			if err != nil || got != tt.want {
				t.Errorf("DataDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAdminAddr(t *testing.T) {
	tests := []struct {
		admin   string
		network string
		address string
		err     string
	}{
		{"", "unix", "/data/admin.sock", ""},
		{"off", "", "", ""},
		{"unix:ctl.sock", "unix", "/data/ctl.sock", ""},
		{"unix:/run/crust.sock", "unix", "/run/crust.sock", ""},
		{"unix:///run/crust.sock", "unix", "/run/crust.sock", ""},
		{"tcp://127.0.0.1:5485", "tcp", "127.0.0.1:5485", ""},
		{"tcp://[::1]:5485", "tcp", "[::1]:5485", ""},
		{"tcp://127.0.0.2:05485", "tcp", "127.0.0.2:5485", ""},
		{"unix://run/crust.sock", "", "", `admin: "unix://run/crust.sock": "unix://" takes an absolute path`},
		{"unix:", "", "", "no path"},
		{"tcp://192.0.2.1:5485", "", "", "not a loopback address"},
		{"tcp://[::]:5485", "", "", "not a loopback address"},
		{"tcp://127.0.0.1", "", "", "want tcp://127.0.0.1:PORT"},
		{"tcp://127.0.0.1:0", "", "", `port "0"`},
		{"tcp://127.0.0.1:http", "", "", `port "http"`},
		{"127.0.0.1:5485", "", "", `want "off"`},
	}
	for _, tt := range tests {
		c := Default()
		c.Admin = tt.admin
		network, address, err := c.AdminAddr("/data")
		if network != tt.network || address != tt.address {
			t.Errorf("admin %q: AdminAddr = %q, %q, want %q, %q", tt.admin, network, address, tt.network, tt.address)
		}
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("admin %q: AdminAddr error %v, want %q", tt.admin, err, tt.err)
		}
	}
}

// The limits take a number above zero or -1 (none); reconnect_for any duration but
// zero.
func TestServiceChecksLimits(t *testing.T) {
	c := Default()
	c.DataDirectory = t.TempDir()
	c.Limits.SourceRate = 0
	c.Limits.PeerByteRate = -2
	c.Limits.ReconnectFor = 0
	_, err := c.Service()
	want := "limits.source_rate: 0: want a limit above zero, or -1 for none\n" +
		"limits.peer_byte_rate: -2: want a limit above zero, or -1 for none\n" +
		`limits.reconnect_for: 0s: want a duration above zero, like "1m", or "-1s" for never`
	if err == nil || err.Error() != want {
		t.Fatalf("Service() = %v, want\n%s", err, want)
	}
}
