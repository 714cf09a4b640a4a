package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/crust-p2p/crust/sim/vnet"
	"github.com/crust-p2p/crust/transport"
)

// Net is transport.Net on a host of the virtual network: the real transports (and
// the nodes above them) open their sockets through it, so their packets stay in the
// simulation. It offers IPv4 only, as vnet does.
type Net struct {
	Host *vnet.Host
}

var _ transport.Net = Net{}

// Listen implements transport.Net: a stream listener on the host's port, which
// DialFrom may share (as SO_REUSEPORT lets crust's listen port dial out).
func (n Net) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	port, err := n.localPort(network, address, "tcp")
	if err != nil {
		return nil, err
	}
	return n.Host.Listen(port)
}

// Dial implements transport.Net, from an ephemeral port.
func (n Net) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	to, err := remote(network, address)
	if err != nil {
		return nil, err
	}
	return n.Host.Dial(ctx, to)
}

// DialFrom implements transport.Net.
func (n Net) DialFrom(ctx context.Context, network, laddr, raddr string) (net.Conn, error) {
	port, err := n.localPort(network, laddr, "tcp")
	if err != nil {
		return nil, err
	}
	to, err := remote(network, raddr)
	if err != nil {
		return nil, err
	}
	return n.Host.DialFrom(ctx, port, to)
}

// remote parses a stream destination "ip:port" (IPv4 only).
func remote(network, address string) (netip.AddrPort, error) {
	if network != "tcp" && network != "tcp4" {
		return netip.AddrPort{}, &net.OpError{Op: "dial", Net: network, Err: errors.New("the virtual network has IPv4 tcp only")}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().Is4() {
		return netip.AddrPort{}, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%v: the virtual network has IPv4 only", ap)}
	}
	return ap, nil
}

// ListenPacket implements transport.Net: address is "ip:port" with the host's own
// address or an unspecified one (IPv4), port 0 for any free port.
func (n Net) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	port, err := n.localPort(network, address, "udp")
	if err != nil {
		return nil, err
	}
	return n.Host.ListenPacket(port)
}

// localPort checks that address ("ip:port", of network, which must be proto or
// proto+"4") is one the host can bind, and returns its port.
func (n Net) localPort(network, address, proto string) (int, error) {
	if network != proto && network != proto+"4" {
		return 0, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("the virtual network has IPv4 %s only", proto)}
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("sim: bad port in %q", address)
	}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return 0, err
		}
		if a = a.Unmap(); !a.IsUnspecified() && a != n.Host.Addr() {
			return 0, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("%v is not this host's address (%v)", a, n.Host.Addr())}
		}
	}
	return port, nil
}

// InterfaceAddrs implements transport.Net: the host's one address.
func (n Net) InterfaceAddrs() ([]net.Addr, error) {
	a := n.Host.Addr()
	return []net.Addr{&net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(24, 32)}}, nil
}
