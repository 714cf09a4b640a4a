package transport

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Net opens sockets. The operating system is the default (OSNet); sim provides a
// virtual network.
type Net interface {
	// Listen opens a stream listener, as net.Listen, whose port DialFrom may share.
	// It fails if another socket holds the address already.
	Listen(ctx context.Context, network, address string) (net.Listener, error)
	// Dial opens a stream connection, as net.Dialer.DialContext.
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	// DialFrom opens a stream connection from the local address laddr, "ip:port",
	// which may be a port our listener holds: the connection then leaves from the
	// address and port peers know us by (STUN over TCP, TCP hole punching).
	DialFrom(ctx context.Context, network, laddr, raddr string) (net.Conn, error)
	// ListenPacket opens a datagram socket, as net.ListenPacket.
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
	// InterfaceAddrs lists the host's unicast addresses, as net.InterfaceAddrs.
	InterfaceAddrs() ([]net.Addr, error)
}

// HopLimitDialer is a Net that can also dial with a hop limit, as TCP.OpenFirewall
// needs; OSNet is one. A Net without it cannot open firewalls.
type HopLimitDialer interface {
	// DialFromHopLimit is DialFrom with the socket's IPv4 TTL or IPv6 unicast hop
	// limit set to hops before it connects, so its SYN dies after hops routers.
	DialFromHopLimit(ctx context.Context, network, laddr, raddr string, hops int) (net.Conn, error)
}

// HopLimitWriter is a datagram socket (from Net.ListenPacket) that can send one
// datagram with a hop limit and leave its other packets at the default, as
// QUIC.OpenFirewall needs. A *net.UDPConn does not need it: the QUIC transport sets
// the limit on the one datagram itself (IPv4 on Linux only).
type HopLimitWriter interface {
	// WriteToHopLimit sends b to "to" with the IPv4 TTL or IPv6 hop limit hops.
	WriteToHopLimit(b []byte, to netip.AddrPort, hops int) (int, error)
}

// OSNet is Net on the operating system's sockets.
type OSNet struct{}

var (
	_ Net            = OSNet{}
	_ HopLimitDialer = OSNet{}
)

// Listen implements Net. The listener shares its port with DialFrom
// (SO_REUSEADDR|SO_REUSEPORT). Since SO_REUSEPORT would also let a second process
// bind the same port and take half its connections, a fixed port is first bound
// without sharing: if anything holds it, Listen fails with "address already in use".
func (OSNet) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	if _, port, err := net.SplitHostPort(address); err == nil && port != "0" {
		var plain net.ListenConfig
		probe, err := plain.Listen(ctx, network, address)
		if err != nil {
			return nil, err
		}
		probe.Close()
	}
	lc := net.ListenConfig{Control: sharePort}
	return lc.Listen(ctx, network, address)
}

// Dial implements Net.
func (OSNet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// DialFrom implements Net.
func (OSNet) DialFrom(ctx context.Context, network, laddr, raddr string) (net.Conn, error) {
	local, err := net.ResolveTCPAddr(network, laddr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: local, Control: sharePort}
	return d.DialContext(ctx, network, raddr)
}

// DialFromHopLimit implements HopLimitDialer: DialFrom with the IPv4 TTL or IPv6
// unicast hop limit of the socket set to hops.
func (OSNet) DialFromHopLimit(ctx context.Context, network, laddr, raddr string, hops int) (net.Conn, error) {
	local, err := net.ResolveTCPAddr(network, laddr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: local, Control: func(network, address string, rc syscall.RawConn) error {
		if err := sharePort(network, address, rc); err != nil {
			return err
		}
		return setHopLimit(rc, network == "tcp6", hops)
	}}
	return d.DialContext(ctx, network, raddr)
}

// ListenPacket implements Net.
func (OSNet) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, address)
}

// InterfaceAddrs implements Net.
func (OSNet) InterfaceAddrs() ([]net.Addr, error) { return net.InterfaceAddrs() }

// Clock tells the time. Logic reads time only through a Clock so tests and sim can
// control it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }
