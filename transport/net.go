package transport

import (
	"context"
	"net"
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

// OSNet is Net on the operating system's sockets.
type OSNet struct{}

var _ Net = OSNet{}

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
