package transport

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Endpoint is where a node can be reached: a protocol and an address.
type Endpoint struct {
	// Proto is the transport protocol, e.g. "tcp".
	Proto string
	// Addr is the IP address and port.
	Addr netip.AddrPort
}

// String returns "proto://host:port", the form carried in Hello and contacts.
func (e Endpoint) String() string { return e.Proto + "://" + e.Addr.String() }

// MarshalText implements encoding.TextMarshaler.
func (e Endpoint) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *Endpoint) UnmarshalText(b []byte) error {
	p, err := ParseEndpoint(string(b))
	if err != nil {
		return err
	}
	*e = p
	return nil
}

// ParseEndpoint parses "proto://host:port" (IPv6 in brackets). The protocol is one of
// "tcp" and "quic"; the address must be an IP literal and the port non-zero.
func ParseEndpoint(s string) (Endpoint, error) {
	proto, addr, ok := strings.Cut(s, "://")
	if !ok {
		return Endpoint{}, fmt.Errorf("endpoint %q: want proto://host:port, e.g. tcp://192.0.2.1:5483", s)
	}
	if proto != "tcp" && proto != "quic" {
		return Endpoint{}, fmt.Errorf("endpoint %q: unknown protocol %q (want tcp or quic)", s, proto)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	if ap.Port() == 0 || !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return Endpoint{}, fmt.Errorf("endpoint %q: need a concrete address and a non-zero port", s)
	}
	if ap.Addr().Zone() != "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: an IPv6 zone names a local interface; it means nothing to a peer", s)
	}
	if a := ap.Addr().Unmap(); a.IsMulticast() || a == netip.IPv4Unspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return Endpoint{}, fmt.Errorf("endpoint %q: not a unicast address", s)
	}
	return Endpoint{Proto: proto, Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// AddrPortOf converts a socket address to a netip.AddrPort (IPv4-mapped IPv6 unmapped).
// It returns the zero value for addresses that are not IP.
func AddrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return netip.AddrPort{}
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
