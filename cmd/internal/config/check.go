package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crust-p2p/crust"
)

// Bounds of values the library would take but that cannot work.
const (
	// minFrameSize leaves room for the control messages, which carry contacts.
	minFrameSize = 1 << 10
	// maxFrameSize is far beyond any use: a frame is held whole in memory.
	maxFrameSize = 1 << 30
	// maxEventBuffer bounds the event channel, which is allocated in full at start.
	maxEventBuffer = 1 << 20
)

// check checks every value of c and converts those the library takes into a
// crust.Config. It leaves out what depends on the host, DataDir and the automatic
// beacon addresses: Service adds them.
func (c Config) check() (crust.Config, []*Error) {
	var ch checker
	lim := c.Limits
	lib := crust.Config{
		Protocols:            c.protocols(&ch),
		StepTimeout:          ch.positive("limits.step_timeout", lim.StepTimeout),
		MaxFrameSize:         ch.inRange("limits.max_frame_size", lim.MaxFrameSize, minFrameSize, maxFrameSize),
		HandshakeTimeout:     ch.positive("limits.handshake_timeout", lim.HandshakeTimeout),
		MaxPendingHandshakes: ch.atLeast("limits.max_pending_handshakes", lim.MaxPendingHandshakes, 1),
		KeepaliveInterval:    ch.positive("limits.keepalive_interval", lim.KeepaliveInterval),
		PeerTimeout:          ch.positive("limits.peer_timeout", lim.PeerTimeout),
		SendQueueMessages:    ch.atLeast("limits.send_queue_messages", lim.SendQueueMessages, 1),
		SendQueueBytes:       ch.atLeast("limits.send_queue_bytes", lim.SendQueueBytes, 1),
		EventBuffer:          ch.inRange("limits.event_buffer", lim.EventBuffer, 1, maxEventBuffer),
		MaxPendingMessages:   ch.atLeast("limits.max_pending_messages", lim.MaxPendingMessages, 1),
		MaxPendingBytes:      ch.atLeast("limits.max_pending_bytes", lim.MaxPendingBytes, 1),
		BeaconPort:           uint16(ch.inRange("beacon_port", c.BeaconPort, 1, math.MaxUint16)),
		AnnounceInterval:     ch.positive("announce_interval", c.AnnounceInterval),
		BootstrapFile:        c.BootstrapFile,
		BootstrapMax:         ch.atLeast("bootstrap_max", c.BootstrapMax, 1),
		BootstrapParallel:    ch.atLeast("bootstrap_parallel", c.BootstrapParallel, 1),
		BootstrapPeers:       ch.atLeast("bootstrap_peers", c.BootstrapPeers, 1),
		ShutdownGrace:        ch.positive("limits.shutdown_grace", lim.ShutdownGrace),
		Limits: crust.Limits{
			MaxConnections:  int(ch.limit("limits.max_connections", float64(lim.MaxConnections))),
			SourceRate:      ch.limit("limits.source_rate", lim.SourceRate),
			SourceBurst:     ch.atLeast("limits.source_burst", lim.SourceBurst, 1),
			PeerMessageRate: ch.limit("limits.peer_message_rate", lim.PeerMessageRate),
			PeerByteRate:    ch.limit("limits.peer_byte_rate", lim.PeerByteRate),
			RelayRate:       ch.limit("limits.relay_rate", lim.RelayRate),
			BeaconReplyRate: ch.limit("limits.beacon_reply_rate", lim.BeaconReplyRate),
		},
		ReconnectFor: ch.reconnect("limits.reconnect_for", lim.ReconnectFor),
	}
	lib.ListenAddrs = c.listenAddrs(&ch)
	if lim.MaxMessageSize != 0 { // 0 is max_frame_size - 16
		frame := max(lim.MaxFrameSize, minFrameSize) // a bad one is reported already
		lib.MaxMessageSize = ch.inRange("limits.max_message_size", lim.MaxMessageSize, 1, frame-16)
	}
	if lim.KeepaliveInterval > 0 && lim.PeerTimeout > 0 && lim.PeerTimeout <= lim.KeepaliveInterval {
		ch.fail("limits.peer_timeout", "%v is not longer than keepalive_interval (%v): peers would be lost between pings",
			lim.PeerTimeout, lim.KeepaliveInterval)
	}
	beaconAddrs := c.beaconAddrs(&ch)
	if c.Beacon {
		lib.BeaconAddrs = beaconAddrs
	}
	for _, s := range c.Contacts {
		contact, err := crust.ParseContact(s)
		if err != nil {
			ch.fail("contacts", "%q: %v", s, err)
			continue
		}
		lib.Contacts = append(lib.Contacts, contact)
	}
	lib.Whitelist = nodeIDs(&ch, "whitelist", c.Whitelist)
	lib.Blacklist = nodeIDs(&ch, "blacklist", c.Blacklist)
	lib.BlacklistPrefixes = prefixes(&ch, "blacklist_prefixes", c.BlacklistPrefixes)
	for _, s := range c.StunServers {
		if err := checkHostPort(s); err != nil {
			ch.fail("stun_servers", "%q: %v", s, err)
		}
	}
	lib.StunServers = slices.Clone(c.StunServers)
	lib.UPnP = c.UPnP
	lib.FirewallHops = ch.inRange("firewall_hops", c.FirewallHops, 0, 64)
	lib.UPnPLease = ch.positive("upnp_lease", c.UPnPLease)
	if c.UPnPURL != "" {
		if u, err := url.Parse(c.UPnPURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ch.fail("upnp_url", "%q: want an http:// URL like http://192.168.1.1:2189/rootDesc.xml", c.UPnPURL)
		}
		lib.UPnPRootURL = c.UPnPURL
	}
	if _, _, err := parseAdmin(c.Admin); err != nil {
		ch.fail("admin", "%v", err)
	}
	if err := CheckMetricsAddr(c.MetricsAddr); err != nil {
		ch.fail("metrics_addr", "%v", err)
	}
	return lib, ch.errs
}

func (c Config) listenAddrs(ch *checker) []string {
	port := ch.inRange("listen_port", c.ListenPort, 0, math.MaxUint16)
	if len(c.ListenAddresses) == 0 {
		ch.fail("listen_addresses", `empty: list at least one IP address; "0.0.0.0" and "::" are every address of the host`)
	}
	var addrs []string
	seen := make(map[netip.Addr]bool)
	for _, s := range c.ListenAddresses {
		ip, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			ch.fail("listen_addresses", "%q is not an IP address", s)
		case seen[ip]:
			ch.fail("listen_addresses", "%q is listed twice", s)
		default:
			seen[ip] = true
			addrs = append(addrs, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		}
	}
	return addrs
}

func (c Config) protocols(ch *checker) []string {
	if len(c.Protocols) == 0 {
		ch.fail("protocols", `empty: want "tcp", "quic" or both`)
	}
	var protocols []string
	for _, p := range c.Protocols {
		switch {
		case p != "tcp" && p != "quic":
			ch.fail("protocols", `%q is not a protocol: want "tcp" or "quic"`, p)
		case slices.Contains(protocols, p):
			ch.fail("protocols", "%q is listed twice", p)
		default:
			protocols = append(protocols, p)
		}
	}
	return protocols
}

func (c Config) beaconAddrs(ch *checker) []netip.Addr {
	var addrs []netip.Addr
	for _, s := range c.BeaconAddresses {
		ip, err := netip.ParseAddr(s)
		v4 := ip.Unmap().Is4()
		switch {
		case err != nil:
			ch.fail("beacon_addresses", "%q is not an IP address", s)
		case !v4 && !ip.IsMulticast():
			ch.fail("beacon_addresses", "%q: an IPv6 beacon address is a multicast group, like \"ff02::5483\"", s)
		case v4 && (ip.Unmap().IsMulticast() || ip.Unmap().IsUnspecified()):
			ch.fail("beacon_addresses", "%q: an IPv4 beacon address is a broadcast address, like \"255.255.255.255\"", s)
		default:
			addrs = append(addrs, ip)
		}
	}
	return addrs
}

func nodeIDs(ch *checker, key string, texts []string) []crust.NodeID {
	var ids []crust.NodeID
	for _, s := range texts {
		id, err := crust.ParseNodeID(s)
		if err != nil {
			ch.fail(key, "%q: %v", s, err)
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

func prefixes(ch *checker, key string, texts []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range texts {
		p, err := parsePrefix(s)
		if err != nil {
			ch.fail(key, "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parsePrefix parses an IP prefix to block, "192.0.2.0/24" or "2001:db8::/32"; a
// bare address, "192.0.2.7", is the prefix of that one address. A prefix with bits
// set past its length ("192.0.2.7/24") is refused as a likely typo, with the masked
// form as a hint.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP prefix or address, like \"192.0.2.0/24\", \"2001:db8::/32\" or \"192.0.2.7\"", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address to block has no zone (%%%s)", s, a.Zone())
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP prefix, like \"192.0.2.0/24\" or \"2001:db8::/32\"", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has address bits set past /%d: did you mean %q (the network) or %q (the one address)?", s, p.Bits(), m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}

// checkHostPort checks "host:port" with a port from 1 to 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf(`want host:port, like "stun.example.org:3478"`)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checker collects the mistakes in a Config. Its checks return the value they
// checked, so that a conversion can check on the way.
type checker struct{ errs []*Error }

// fail records a mistake at key, a dotted key with no quoted parts.
func (ch *checker) fail(key, format string, args ...any) {
	ch.errs = append(ch.errs, newError(strings.Split(key, "."), fmt.Errorf(format, args...)))
}

func (ch *checker) inRange(key string, v, lo, hi int) int {
	if v < lo || v > hi {
		ch.fail(key, "%d is out of range %d..%d", v, lo, hi)
	}
	return v
}

func (ch *checker) atLeast(key string, v, lo int) int {
	if v < lo {
		ch.fail(key, "%d is too small: want at least %d", v, lo)
	}
	return v
}

// limit checks a limit: above zero, or -1 for none (crust's negative).
func (ch *checker) limit(key string, v float64) float64 {
	if v <= 0 && v != -1 {
		ch.fail(key, "%v: want a limit above zero, or -1 for none", v)
	}
	return v
}

// reconnect checks reconnect_for: above zero, or negative for never.
func (ch *checker) reconnect(key string, d Duration) time.Duration {
	if d == 0 {
		ch.fail(key, "0s: want a duration above zero, like \"1m\", or \"-1s\" for never")
	}
	return time.Duration(d)
}

func (ch *checker) positive(key string, d Duration) time.Duration {
	if d <= 0 {
		ch.fail(key, "%v: want a duration above zero, like \"10s\"", d)
	}
	return time.Duration(d)
}
