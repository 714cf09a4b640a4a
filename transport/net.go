package transport

import (
	"context"
	"net"
	"time"
)

// Net opens sockets. The operating system is the default (OSNet); sim provides a
// virtual network.
type Net interface {
	// Listen opens a stream listener, as net.Listen.
	Listen(ctx context.Context, network, address string) (net.Listener, error)
	// Dial opens a stream connection, as net.Dialer.DialContext.
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	// ListenPacket opens a datagram socket, as net.ListenPacket.
	ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error)
	// InterfaceAddrs lists the host's unicast addresses, as net.InterfaceAddrs.
	InterfaceAddrs() ([]net.Addr, error)
}

// OSNet is Net on the operating system's sockets.
type OSNet struct{}

var _ Net = OSNet{}

// Listen implements Net.
func (OSNet) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, network, address)
}

// Dial implements Net.
func (OSNet) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
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
