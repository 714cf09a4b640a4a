package vnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// The range ListenPacket(0), Listen(0) and Dial pick ports from: IANA's dynamic
// ports (RFC 6335).
const (
	firstEphemeral = 49152
	lastEphemeral  = 65535
)

// Host is a machine with one IPv4 address, on the internet or on a router's LAN.
type Host struct {
	net  *Network
	addr netip.Addr
	seg  *segment

	// Guarded by net.mu.
	link          Link
	sockets       map[uint16]*PacketConn // datagram sockets by port
	nextEphemeral int

	// Stream sockets (stream.go), guarded by net.mu: listeners by port,
	// connections by 4-tuple, and the connections holding each port.
	listeners map[uint16]*Listener
	streams   map[streamKey]*StreamConn
	tcpPorts  map[uint16]*tcpPortUse
	// timeWait holds the 4-tuples of connections closed with a FIN, until when the
	// peer's ACKs and FIN on them are dropped silently (TimeWait); timeWaitSweep is
	// the size at which expired entries are removed.
	timeWait      map[streamKey]time.Time
	timeWaitSweep int
}

var _ node = (*Host)(nil)

// Addr returns the host's address: public on the internet, private behind a NAT.
func (h *Host) Addr() netip.Addr { return h.addr }

// String names the host in traces: "host 192.0.2.1".
func (h *Host) String() string { return "host " + h.addr.String() }

// SetLink sets the link between the host and its network. Default: Link{}.
func (h *Host) SetLink(l Link) {
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	h.link = l
}

// ListenPacket opens a datagram socket on port, or on a free port from 49152-65535
// for port 0. A port another socket holds fails with ErrAddrInUse.
func (h *Host) ListenPacket(port int) (*PacketConn, error) {
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("listening on %s port %d: port out of range", h.addr, port)
	}
	if port == 0 {
		p, ok := h.freeEphemeral(func(p uint16) bool { _, taken := h.sockets[p]; return !taken })
		if !ok {
			return nil, fmt.Errorf("listening on %s: %w", h.addr, ErrNoFreePort)
		}
		port = p
	}
	local := netip.AddrPortFrom(h.addr, uint16(port))
	if _, ok := h.sockets[uint16(port)]; ok {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(local),
			Err: os.NewSyscallError("bind", ErrAddrInUse)}
	}
	c := newPacketConn(h, local, h.net.cfg.QueueLen)
	h.sockets[uint16(port)] = c
	return c, nil
}

// freeEphemeral picks the next ephemeral port that free reports free, round robin;
// h.net.mu is held.
func (h *Host) freeEphemeral(free func(uint16) bool) (int, bool) {
	for range lastEphemeral - firstEphemeral + 1 {
		p := h.nextEphemeral
		h.nextEphemeral++
		if h.nextEphemeral > lastEphemeral {
			h.nextEphemeral = firstEphemeral
		}
		if free(uint16(p)) {
			return p, true
		}
	}
	return 0, false
}

// uplink implements node.
func (h *Host) uplink() Link { return h.link }

// receive implements node: queue p to the socket on its destination port, or hand a
// stream segment to its connection or listener.
func (h *Host) receive(p packet) {
	if p.proto == protoTCP {
		h.receiveSegment(p)
		return
	}
	c, ok := h.sockets[p.dst.Port()]
	if !ok {
		h.net.drop(h.String(), p, DropClosedPort)
		return
	}
	if !c.enqueue(datagram{from: p.src, payload: p.payload}) {
		h.net.drop(h.String(), p, DropQueueFull)
		return
	}
	h.net.stats.Delivered++
	h.net.trace(EventDeliver, h.String(), p, "")
}

// send puts a datagram from one of the host's sockets on the way; h.net.mu is held.
func (h *Host) send(p packet) {
	h.net.stats.Sent++
	h.net.trace(EventSend, h.String(), p, "")
	h.net.up(h, h.seg, p)
}

// closeSocket forgets c; h.net.mu is held.
func (h *Host) closeSocket(c *PacketConn) {
	if h.sockets[c.local.Port()] == c {
		delete(h.sockets, c.local.Port())
	}
}
