package vnet

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
)

// Listener is a stream listener of a Host; it implements net.Listener with a
// *net.TCPAddr address, and Accept returns *StreamConn connections.
//
// Its port is shared with DialFrom, as a listener with SO_REUSEADDR|SO_REUSEPORT
// shares it: connections dialled from the port and connections the listener accepts
// live side by side, each on its own 4-tuple. A SYN for a 4-tuple that has no
// connection becomes a connection in SYN_RECEIVED; Accept returns it once the
// handshake is done. At most Config.Backlog connections wait (handshaking or not
// yet accepted); SYNs beyond that are dropped (DropBacklogFull).
type Listener struct {
	host  *Host
	local netip.AddrPort

	closed    chan struct{}
	closeOnce sync.Once

	// Guarded by host.net.mu.
	halfOpen map[*StreamConn]struct{} // connections in SYN_RECEIVED
	queue    []*StreamConn            // established, not yet accepted
	wake     chan struct{}            // closed and replaced when the queue grows
	done     bool                     // Close was called
}

var _ net.Listener = (*Listener)(nil)

// Listen opens a stream listener on port, or on a free port from 49152-65535 for
// port 0. It fails with ErrAddrInUse if another listener or any connection holds the
// port (the port is only shared once the listener holds it).
func (h *Host) Listen(port int) (*Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("listening on %s port %d: port out of range", h.addr, port)
	}
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		p, ok := h.freeEphemeral(h.tcpPortFree)
		if !ok {
			return nil, fmt.Errorf("listening on %s: %w", h.addr, ErrNoFreePort)
		}
		port = p
	}
	local := netip.AddrPortFrom(h.addr, uint16(port))
	if !h.tcpPortFree(uint16(port)) {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(local),
			Err: os.NewSyscallError("bind", ErrAddrInUse)}
	}
	l := &Listener{
		host: h, local: local,
		closed:   make(chan struct{}),
		halfOpen: map[*StreamConn]struct{}{},
		wake:     make(chan struct{}),
	}
	h.listeners[uint16(port)] = l
	return l, nil
}

// handleSYN takes a SYN for a 4-tuple without a connection: a new connection in
// SYN_RECEIVED answers it with a SYN-ACK, unless the backlog is full. The network is
// locked.
func (l *Listener) handleSYN(p packet) {
	h := l.host
	if len(l.halfOpen)+len(l.queue) >= h.net.cfg.Backlog {
		h.net.drop(h.String(), p, DropBacklogFull)
		return
	}
	h.delivered(p)
	c := newStreamConn(h, p.dst, p.src, true)
	c.state = stateSynReceived
	c.listener = l
	l.halfOpen[c] = struct{}{}
	h.addStream(c)
	c.send(flagSYN|flagACK, 0, nil)
	c.armRetransmit()
}

func (l *Listener) wakeAcceptors() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// Accept implements net.Listener: it waits for a connection whose handshake is done
// and returns it as a *StreamConn. After Close it fails with net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	n := l.host.net
	for {
		n.mu.Lock()
		if l.done {
			n.mu.Unlock()
			return nil, l.opError(net.ErrClosed)
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			n.mu.Unlock()
			return c, nil
		}
		wake := l.wake
		n.mu.Unlock()
		select {
		case <-wake:
		case <-l.closed:
		}
	}
}

// Close implements net.Listener: it frees the port for new listeners once the
// connections on it are closed, resets the connections not yet accepted, and makes
// blocked and later Accepts fail with net.ErrClosed. Accepted connections and
// connections dialled from the port stay open. Closing twice is harmless.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		n := l.host.net
		n.mu.Lock()
		l.done = true
		if l.host.listeners[l.local.Port()] == l {
			delete(l.host.listeners, l.local.Port())
		}
		// In a fixed order, so that traces are deterministic.
		halfOpen := slices.SortedFunc(maps.Keys(l.halfOpen), func(a, b *StreamConn) int {
			return a.remote.Compare(b.remote)
		})
		for _, c := range halfOpen {
			c.send(flagRST, 0, nil)
			c.free()
		}
		for _, c := range l.queue {
			if !c.freed {
				c.send(flagRST, 0, nil)
				c.free()
			}
		}
		l.queue = nil
		n.mu.Unlock()
		close(l.closed)
	})
	return nil
}

// Addr implements net.Listener: a *net.TCPAddr with the host's address and the port.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.local) }

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
}
