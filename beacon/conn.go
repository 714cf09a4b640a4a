package beacon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv6"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// DefaultPort is the UDP port beacons use unless configured otherwise.
const DefaultPort = 5483

// Config configures a Conn.
type Config struct {
	// ID is this node's NodeID: packets carrying it are our own and are dropped.
	// Required.
	ID identity.NodeID
	// Port is the UDP port to listen on and send to. Default DefaultPort (5483).
	Port uint16
	// ListenAddr is the address to bind. Default 0.0.0.0: a socket bound to a unicast
	// address does not receive broadcasts.
	ListenAddr netip.Addr
	// Addrs are the broadcast addresses Send sends to, each on Port. Required: this
	// package has no real-world default, so tests pass 127.255.255.255 and a daemon
	// passes 255.255.255.255 plus DirectedBroadcasts (a limited broadcast leaves by
	// one interface only). On an IPv6 socket (ListenAddr "::") they are link-local
	// multicast groups, e.g. DefaultGroup: the socket joins each on every multicast
	// interface and Send sends on every one of them.
	Addrs []netip.Addr
	// Local reports whether a source address is on a local subnet; packets from other
	// sources are dropped before they are parsed. Default: loopback, IPv6 link-local
	// and any address inside a prefix of the host's interfaces, read once by Listen
	// through Interfaces (see LocalSubnets).
	Local func(netip.Addr) bool
	// Interfaces lists the host's addresses for the default Local. Default: the
	// operating system's (net.InterfaceAddrs); transport.OSNet fits too.
	Interfaces InterfaceLister
	// ListenPacket opens the socket. Default: a UDP socket with SO_REUSEADDR,
	// SO_REUSEPORT and SO_BROADCAST set, so several nodes on one host share Port and
	// each hears every broadcast. A virtual network substitutes its own.
	ListenPacket func(ctx context.Context, network, address string) (net.PacketConn, error)
	// Logger receives dropped packets and their reasons, at debug level. Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultGroup is the IPv6 link-local multicast group beacons use.
var DefaultGroup = netip.MustParseAddr("ff02::5483")

// Conn sends and receives beacon packets on a UDP port shared with the other nodes on
// the host. Send and SendTo may be called from any goroutine; Serve runs once.
type Conn struct {
	id     identity.NodeID
	pc     net.PacketConn
	dests  []netip.AddrPort
	ifaces []net.Interface // IPv6: the interfaces the groups were joined on
	local  func(netip.Addr) bool
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Listen opens the beacon socket described by cfg. Close it, or cancel the context
// given to Serve, to release it.
func Listen(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.ID.IsZero() {
		return nil, fmt.Errorf("beacon: %w: set Config.ID to this node's ID", ErrNodeID)
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("beacon: no broadcast address: set Config.Addrs (127.255.255.255 on loopback)")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if !cfg.ListenAddr.IsValid() {
		cfg.ListenAddr = netip.IPv4Unspecified()
	}
	if cfg.Interfaces == nil {
		cfg.Interfaces = osInterfaces{}
	}
	if cfg.ListenPacket == nil {
		cfg.ListenPacket = listenShared
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Local == nil {
		local, err := LocalSubnets(cfg.Interfaces)
		if err != nil {
			return nil, fmt.Errorf("beacon: %w", err)
		}
		cfg.Local = local
	}
	c := &Conn{id: cfg.ID, local: cfg.Local, log: cfg.Logger}
	for _, a := range cfg.Addrs {
		c.dests = append(c.dests, netip.AddrPortFrom(a.Unmap(), cfg.Port))
	}
	network := "udp4"
	if cfg.ListenAddr.Is6() && !cfg.ListenAddr.Is4In6() {
		network = "udp6"
	}
	laddr := netip.AddrPortFrom(cfg.ListenAddr, cfg.Port).String()
	pc, err := cfg.ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("beacon: listening on udp %s: %w", laddr, err)
	}
	c.pc = pc
	if network == "udp6" {
		if err := c.joinGroups(); err != nil {
			pc.Close()
			return nil, fmt.Errorf("beacon: %w", err)
		}
	}
	return c, nil
}

// joinGroups joins the multicast groups among the destinations on every interface
// that is up and does multicast.
func (c *Conn) joinGroups() error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("listing interfaces: %w", err)
	}
	p6 := ipv6.NewPacketConn(c.pc)
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		joined := false
		for _, d := range c.dests {
			if !d.Addr().IsMulticast() {
				continue
			}
			if err := p6.JoinGroup(&ifi, &net.UDPAddr{IP: d.Addr().AsSlice()}); err != nil {
				c.log.Debug("beacon: joining multicast group", "group", d.Addr(), "interface", ifi.Name, "err", err)
				continue
			}
			joined = true
		}
		if joined {
			c.ifaces = append(c.ifaces, ifi)
		}
	}
	return nil
}

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// Send encodes p (at most MaxPacketSize bytes) and sends it to every address in
// Config.Addrs. It tries them all and returns the failures joined.
func (c *Conn) Send(p Packet) error {
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range c.dests {
		if d.Addr().Is6() && d.Addr().IsMulticast() {
			// A link-local group is reached per interface.
			for _, ifi := range c.ifaces {
				to := &net.UDPAddr{IP: d.Addr().AsSlice(), Port: int(d.Port()), Zone: ifi.Name}
				if _, err := c.pc.WriteTo(b, to); err != nil {
					errs = append(errs, fmt.Errorf("sending beacon %s to %s: %w", p.Type, to, err))
				}
			}
			continue
		}
		if _, err := c.pc.WriteTo(b, net.UDPAddrFromAddrPort(d)); err != nil {
			errs = append(errs, fmt.Errorf("sending beacon %s to %s: %w", p.Type, d, err))
		}
	}
	return errors.Join(errs...)
}

// SendTo sends b, an encoded packet (see Packet.Encode, which bounds a Reply), to one
// address. A unicast datagram to a port that several sockets share reaches only one
// of them, so on a host with several nodes a reply meant for all should go by Send.
func (c *Conn) SendTo(b []byte, to netip.AddrPort) error {
	if _, err := c.pc.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		return fmt.Errorf("sending beacon to %s: %w", to, err)
	}
	return nil
}

// Serve reads packets and passes each one, with its source, to handler, until ctx is
// done; then it closes the socket and returns ctx.Err(). Packets from non-local
// sources, our own packets and packets that do not parse are dropped (the last two
// logged at debug level with the reason). handler runs on Serve's goroutine, one
// packet at a time, and may keep the Packet. Serve returns early with an error if the
// socket fails or is closed.
func (c *Conn) Serve(ctx context.Context, handler func(Packet, netip.AddrPort)) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, MaxPacketSize+1) // one more, so Parse sees oversized packets
	for {
		n, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("beacon: reading: %w", err)
		}
		src := transport.AddrPortOf(from)
		if !c.local(src.Addr()) {
			c.log.Debug("beacon: dropped packet from outside the local subnets", "from", src)
			continue
		}
		p, err := Parse(buf[:n])
		if err != nil {
			c.log.Debug("beacon: dropped malformed packet", "from", src, "bytes", n, "reason", err)
			continue
		}
		if p.ID == c.id {
			c.log.Debug("beacon: dropped own packet", "type", p.Type, "from", src)
			continue
		}
		handler(p, src)
	}
}

// Close closes the socket; a blocked Serve returns. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.pc.Close() })
	return c.closeErr
}

func listenShared(ctx context.Context, network, address string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: shareSocket}
	return lc.ListenPacket(ctx, network, address)
}
