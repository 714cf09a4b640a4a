package vnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// segFlags are the control flags of a stream segment.
type segFlags uint8

const (
	flagSYN segFlags = 1 << iota
	flagACK
	flagFIN
	flagRST
	flagPSH // carries data
)

// String names the segment kinds the model sends; datagrams have no flags.
func (f segFlags) String() string {
	switch f {
	case 0:
		return ""
	case flagSYN:
		return "SYN"
	case flagSYN | flagACK:
		return "SYN-ACK"
	case flagACK:
		return "ACK"
	case flagRST:
		return "RST"
	case flagFIN | flagACK:
		return "FIN"
	case flagPSH | flagACK:
		return "DATA"
	}
	return fmt.Sprintf("flags(%#x)", uint8(f))
}

// SYN retransmission, as Linux does it: the first retransmission after a second,
// doubling, synRetries times for a connect (tcp_syn_retries, 127 s in all) and
// synAckRetries times for a SYN-ACK (tcp_synack_retries, 63 s).
const (
	synRTO        = time.Second
	synRetries    = 6
	synAckRetries = 5
)

// TimeWait is how long after closing a connection with a FIN a host still takes the
// peer's ACKs and FIN on its 4-tuple silently (Linux keeps the socket that long, in
// FIN_WAIT_2 and then TIME_WAIT). Answering them with an RST, as a 4-tuple without a
// connection is answered, would be wrong: with the real clock the RST can overtake
// the connection's last data on its way to the peer, which then loses it (a server
// that answers and closes at once, as net/http does, lost responses so).
const TimeWait = 60 * time.Second

// streamKey is a stream connection's 4-tuple on its host: the local port (the address
// is the host's) and the remote endpoint.
type streamKey struct {
	port   uint16
	remote netip.AddrPort
}

// tcpPortUse counts the connections holding a port, besides its listener.
type tcpPortUse struct {
	conns int
	// exclusive counts those that do not share the port (Dial from an ephemeral
	// port); DialFrom and accepted connections share it, as sockets with
	// SO_REUSEADDR|SO_REUSEPORT do.
	exclusive int
}

type streamState int

const (
	stateSynSent     streamState = iota // active open: SYN sent
	stateSynReceived                    // SYN received, SYN-ACK sent
	stateEstablished                    // handshake done
)

// StreamConn is a TCP-like stream connection of a Host; it implements net.Conn with
// *net.TCPAddr addresses. Dial, DialFrom and Listener.Accept return it established.
//
// The stream is ordered and reliable: segments are not subject to link loss, and a
// receiver puts segments that overtook each other (RealClock) back in order. Writes
// never block: each Write becomes one data segment, and the receiver buffers without
// limit (no windows, no congestion control). Reads block until data, the peer's FIN
// (io.EOF), an RST (ECONNRESET), the read deadline or Close. Deadlines are in the
// network's scheduler time, as for PacketConn.
//
// Close sends a FIN, or an RST if received data is unread or SetLinger(0) was called
// (as Linux does), and frees the 4-tuple at once: there is no TIME_WAIT state, so the
// same 4-tuple can be dialled again right away. Segments that arrive for a freed
// 4-tuple are answered with an RST, except the peer's ACKs and FIN within TimeWait
// of a close that sent a FIN: those are dropped, as the socket lingering in FIN_WAIT
// or TIME_WAIT would take them.
type StreamConn struct {
	host   *Host
	local  netip.AddrPort
	remote netip.AddrPort // as this end sees it: the NAT-mapped endpoint behind a NAT
	shared bool           // shares its port (DialFrom, accepted) or holds it alone (Dial)

	deadlines
	closed    chan struct{} // closed by Close
	closeOnce sync.Once

	// Guarded by host.net.mu.
	state     streamState
	active    bool          // opened by Dial or DialFrom, not by a listener
	listener  *Listener     // the listener of a passive connection still in SYN_RECEIVED
	connected chan struct{} // active: closed when the handshake has ended either way
	handshook bool          // active: connected is closed
	dialErr   error         // active: why the handshake failed
	retries   int           // SYN or SYN-ACK retransmissions so far
	rtxGen    uint64        // counts retransmission timers armed, so an old one does nothing
	stopRtx   func() bool
	freed     bool // no longer in the host's tables
	userClose bool // Close was called
	sendNext  uint64
	recvNext  uint64
	early     map[uint64]packet // data and FIN segments that overtook earlier ones
	rbuf      []byte
	eof       bool  // the peer's FIN has been received in order
	finSent   bool  // CloseWrite or Close sent our FIN
	resetErr  error // an RST ended the connection
	linger0   bool
	wake      chan struct{} // closed and replaced when a blocked Read may proceed
}

var _ net.Conn = (*StreamConn)(nil)

func newStreamConn(h *Host, local, remote netip.AddrPort, shared bool) *StreamConn {
	return &StreamConn{
		host: h, local: local, remote: remote, shared: shared,
		deadlines: newDeadlines(h.net.clock),
		closed:    make(chan struct{}),
		early:     map[uint64]packet{},
		wake:      make(chan struct{}),
	}
}

// Dial opens a stream connection to raddr from a free port of 49152-65535 that
// nothing else holds, as a plain connect does. See DialFrom for how it ends.
func (h *Host) Dial(ctx context.Context, raddr netip.AddrPort) (*StreamConn, error) {
	return h.DialFrom(ctx, 0, raddr)
}

// DialFrom opens a stream connection to raddr from local port lport, as a socket with
// SO_REUSEADDR|SO_REUSEPORT bound to lport does: the port may be one the host's
// Listener or other DialFrom connections hold (TCP hole punching dials from the
// listen port). lport 0 is Dial.
//
// It fails with an error matching syscall.EADDRNOTAVAIL if a connection with the same
// 4-tuple exists, and syscall.EADDRINUSE if a connection from Dial holds lport.
// Otherwise it sends a SYN and waits: a SYN-ACK establishes the connection, as does
// the peer's own SYN for the same 4-tuple (simultaneous open, RFC 793: both ends
// answer SYN-ACK); an RST fails with syscall.ECONNREFUSED. Without an answer the SYN
// is sent again after 1 s, 2 s, 4 s, ... as Linux does, until ctx ends (an error
// wrapping ctx.Err(), a net.Error whose Timeout is true for a deadline) or, after
// six retransmissions (127 s of scheduler time), with syscall.ETIMEDOUT.
func (h *Host) DialFrom(ctx context.Context, lport int, raddr netip.AddrPort) (*StreamConn, error) {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if err := ctx.Err(); err != nil {
		return nil, dialError(netip.AddrPortFrom(h.addr, uint16(max(lport, 0))), raddr, err)
	}
	c, err := h.connect(lport, raddr)
	if err != nil {
		return nil, err
	}
	return c.awaitHandshake(ctx)
}

// connect makes an active connection from lport (0: an ephemeral port) to raddr and
// sends its SYN.
func (h *Host) connect(lport int, raddr netip.AddrPort) (*StreamConn, error) {
	if !raddr.Addr().Is4() || raddr.Port() == 0 {
		return nil, fmt.Errorf("dialling %s: %w", raddr, ErrNotIPv4)
	}
	if lport < 0 || lport > 65535 {
		return nil, fmt.Errorf("dialling %s from port %d: port out of range", raddr, lport)
	}
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	shared := lport != 0
	if lport == 0 {
		p, ok := h.freeEphemeral(h.tcpPortFree)
		if !ok {
			return nil, fmt.Errorf("dialling %s from %s: %w", raddr, h.addr, ErrNoFreePort)
		}
		lport = p
	}
	local := netip.AddrPortFrom(h.addr, uint16(lport))
	if _, ok := h.streams[streamKey{uint16(lport), raddr}]; ok {
		return nil, dialError(local, raddr, os.NewSyscallError("connect", syscall.EADDRNOTAVAIL))
	}
	if use := h.tcpPorts[uint16(lport)]; use != nil && use.exclusive > 0 {
		return nil, dialError(local, raddr, os.NewSyscallError("bind", ErrAddrInUse))
	}
	c := newStreamConn(h, local, raddr, shared)
	c.active = true
	c.state = stateSynSent
	c.connected = make(chan struct{})
	h.addStream(c)
	c.send(flagSYN, 0, nil)
	c.armRetransmit()
	return c, nil
}

// awaitHandshake waits for an active connection's handshake to end, or ctx.
func (c *StreamConn) awaitHandshake(ctx context.Context) (*StreamConn, error) {
	select {
	case <-c.connected:
	case <-ctx.Done():
	}
	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !c.handshook {
		// ctx ended first: give up as closing a connecting socket does, silently.
		c.endHandshake(ctx.Err())
		c.free()
	}
	if c.dialErr != nil {
		return nil, dialError(c.local, c.remote, c.dialErr)
	}
	return c, nil
}

func dialError(local, remote netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Source: net.TCPAddrFromAddrPort(local),
		Addr: net.TCPAddrFromAddrPort(remote), Err: err}
}

// tcpPortFree reports whether no stream socket holds port; h.net.mu is held.
func (h *Host) tcpPortFree(port uint16) bool {
	_, listening := h.listeners[port]
	_, used := h.tcpPorts[port]
	return !listening && !used
}

// addStream enters c in the host's tables; h.net.mu is held.
func (h *Host) addStream(c *StreamConn) {
	delete(h.timeWait, streamKey{c.local.Port(), c.remote})
	h.streams[streamKey{c.local.Port(), c.remote}] = c
	use := h.tcpPorts[c.local.Port()]
	if use == nil {
		use = &tcpPortUse{}
		h.tcpPorts[c.local.Port()] = use
	}
	use.conns++
	if !c.shared {
		use.exclusive++
	}
}

// removeStream takes c out of the host's tables; h.net.mu is held.
func (h *Host) removeStream(c *StreamConn) {
	key := streamKey{c.local.Port(), c.remote}
	if h.streams[key] == c {
		delete(h.streams, key)
	}
	use := h.tcpPorts[c.local.Port()]
	use.conns--
	if !c.shared {
		use.exclusive--
	}
	if use.conns == 0 {
		delete(h.tcpPorts, c.local.Port())
	}
}

// sendSegment puts a stream segment on the way; h.net.mu is held.
func (h *Host) sendSegment(p packet) {
	h.net.stats.SegmentsSent++
	h.net.trace(EventSend, h.String(), p, "")
	h.net.up(h, h.seg, p)
}

// receiveSegment hands stream segment p to the connection of its 4-tuple, or a SYN to
// the listener on its port; anything else is answered with an RST (unless it is
// one). h.net.mu is held.
func (h *Host) receiveSegment(p packet) {
	if c, ok := h.streams[streamKey{p.dst.Port(), p.src}]; ok {
		if !c.handle(p) {
			h.net.drop(h.String(), p, DropUnexpected)
		}
		return
	}
	if l, ok := h.listeners[p.dst.Port()]; ok && p.flags == flagSYN {
		l.handleSYN(p)
		return
	}
	h.net.drop(h.String(), p, DropNoConnection)
	if h.closedGracefully(streamKey{p.dst.Port(), p.src}) && (p.flags == flagACK || p.flags == flagFIN|flagACK) {
		return
	}
	if p.flags&flagRST == 0 {
		h.sendSegment(packet{src: p.dst, dst: p.src, proto: protoTCP, flags: flagRST})
	}
}

// delivered counts and traces a segment a connection or listener took.
func (h *Host) delivered(p packet) {
	h.net.stats.SegmentsDelivered++
	h.net.trace(EventDeliver, h.String(), p, "")
}

// send sends a segment of c; the network is locked.
func (c *StreamConn) send(flags segFlags, seq uint64, payload []byte) {
	c.host.sendSegment(packet{src: c.local, dst: c.remote, proto: protoTCP, flags: flags, seq: seq, payload: payload})
}

// handle runs the state machine on segment p of c's 4-tuple and reports whether c
// had a use for it; the network is locked.
func (c *StreamConn) handle(p packet) bool {
	h := c.host
	if p.flags&flagRST != 0 {
		h.delivered(p)
		c.reset()
		return true
	}
	switch c.state {
	case stateSynSent:
		switch p.flags {
		case flagSYN | flagACK:
			h.delivered(p)
			c.establish()
			c.send(flagACK, 0, nil)
			return true
		case flagSYN: // simultaneous open
			h.delivered(p)
			c.state = stateSynReceived
			c.retries = 0
			c.send(flagSYN|flagACK, 0, nil)
			c.armRetransmit()
			return true
		}
		// An ACK for a connection this socket never made: the peer holds an older
		// one on this 4-tuple. The RST ends it, and our next SYN gets through.
		c.send(flagRST, 0, nil)
		return false
	case stateSynReceived:
		switch {
		case p.flags == flagSYN: // the peer retransmitted its SYN
			h.delivered(p)
			c.send(flagSYN|flagACK, 0, nil)
			return true
		case p.flags == flagSYN|flagACK: // the peer's answer after a simultaneous open
			h.delivered(p)
			c.establish()
			return true
		case p.flags&flagACK == 0:
			return false
		}
		// The ACK, or data that overtook it, completes the handshake.
		c.establish()
	}
	// Established.
	switch {
	case p.flags == flagSYN:
		// The peer has lost this connection and opens a new one: a challenge ACK
		// makes it reset ours (RFC 5961).
		h.delivered(p)
		c.send(flagACK, 0, nil)
		return true
	case p.flags&flagSYN != 0: // a duplicate SYN-ACK
		return false
	case p.flags&(flagPSH|flagFIN) != 0:
		h.delivered(p)
		c.receiveInOrder(p)
		return true
	}
	h.delivered(p) // a bare ACK
	return true
}

// establish ends the handshake of c successfully.
func (c *StreamConn) establish() {
	c.state = stateEstablished
	c.stopRetransmit()
	if c.active {
		c.endHandshake(nil)
		return
	}
	if l := c.listener; l != nil {
		c.listener = nil
		delete(l.halfOpen, c)
		l.queue = append(l.queue, c)
		l.wakeAcceptors()
	}
}

// endHandshake records how an active connection's handshake ended and wakes
// awaitHandshake.
func (c *StreamConn) endHandshake(err error) {
	if !c.active || c.handshook {
		return
	}
	c.handshook = true
	c.dialErr = err
	close(c.connected)
}

// reset handles an RST for c.
func (c *StreamConn) reset() {
	if c.state == stateEstablished {
		c.resetErr = syscall.ECONNRESET
	} else {
		c.endHandshake(syscall.ECONNREFUSED) // a passive one just goes away
	}
	c.free()
}

// receiveInOrder takes a data or FIN segment, holding back any that overtook an
// earlier one.
func (c *StreamConn) receiveInOrder(p packet) {
	if p.seq < c.recvNext {
		return
	}
	if p.seq > c.recvNext {
		c.early[p.seq] = p
		return
	}
	for {
		if p.flags&flagFIN != 0 {
			c.eof = true
		} else {
			c.rbuf = append(c.rbuf, p.payload...)
		}
		c.recvNext++
		next, ok := c.early[c.recvNext]
		if !ok {
			break
		}
		delete(c.early, c.recvNext)
		p = next
	}
	c.wakeReaders()
}

// armRetransmit schedules the next SYN or SYN-ACK retransmission.
func (c *StreamConn) armRetransmit() {
	c.stopRetransmit()
	c.rtxGen++
	gen := c.rtxGen
	n := c.host.net
	c.stopRtx = n.clock.AfterFunc(synRTO<<c.retries, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if c.rtxGen == gen && !c.freed {
			c.retransmit()
		}
	})
}

func (c *StreamConn) stopRetransmit() {
	c.rtxGen++
	if c.stopRtx != nil {
		c.stopRtx()
		c.stopRtx = nil
	}
}

// retransmit sends the SYN or SYN-ACK again, or gives up after the last one.
func (c *StreamConn) retransmit() {
	flags, limit := flagSYN, synRetries
	if c.state == stateSynReceived {
		flags, limit = flagSYN|flagACK, synAckRetries
	}
	if c.retries >= limit {
		c.endHandshake(os.NewSyscallError("connect", syscall.ETIMEDOUT))
		c.free()
		return
	}
	c.retries++
	c.send(flags, 0, nil)
	c.armRetransmit()
}

// free takes c out of the host's tables and wakes its readers; the network is
// locked. Later segments for its 4-tuple meet no connection.
func (c *StreamConn) free() {
	if c.freed {
		return
	}
	c.freed = true
	c.stopRetransmit()
	c.host.removeStream(c)
	if l := c.listener; l != nil {
		c.listener = nil
		delete(l.halfOpen, c)
	}
	c.wakeReaders()
}

func (c *StreamConn) wakeReaders() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// Read implements net.Conn.
func (c *StreamConn) Read(b []byte) (int, error) {
	n := c.host.net
	for {
		expired := c.readDeadline.expired()
		select {
		case <-expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		default:
		}
		n.mu.Lock()
		switch {
		case c.userClose:
			n.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case len(c.rbuf) > 0:
			k := copy(b, c.rbuf)
			c.rbuf = c.rbuf[k:]
			if len(c.rbuf) == 0 {
				c.rbuf = nil
			}
			n.mu.Unlock()
			return k, nil
		case len(b) == 0:
			n.mu.Unlock()
			return 0, nil
		case c.resetErr != nil:
			n.mu.Unlock()
			return 0, c.opError("read", os.NewSyscallError("read", c.resetErr))
		case c.eof:
			n.mu.Unlock()
			return 0, io.EOF
		}
		wake := c.wake
		n.mu.Unlock()
		select {
		case <-wake:
		case <-expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-c.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
}

// Write implements net.Conn. It never blocks: the bytes leave as one segment and
// arrive after the path's latency. After CloseWrite it fails with EPIPE, after an RST
// with ECONNRESET.
func (c *StreamConn) Write(b []byte) (int, error) {
	select {
	case <-c.writeDeadline.expired():
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	default:
	}
	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.userClose:
		return 0, c.opError("write", net.ErrClosed)
	case c.resetErr != nil:
		return 0, c.opError("write", os.NewSyscallError("write", c.resetErr))
	case c.finSent:
		return 0, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
	case len(b) == 0:
		return 0, nil
	}
	c.send(flagPSH|flagACK, c.sendNext, append([]byte(nil), b...))
	c.sendNext++
	return len(b), nil
}

// CloseWrite sends a FIN after the data written so far (half-close): the peer reads
// io.EOF once it has read the data, and may still write back.
func (c *StreamConn) CloseWrite() error {
	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.userClose:
		return c.opError("close", net.ErrClosed)
	case c.resetErr != nil:
		return c.opError("close", os.NewSyscallError("shutdown", syscall.ENOTCONN))
	}
	c.sendFIN()
	return nil
}

func (c *StreamConn) sendFIN() {
	if c.finSent {
		return
	}
	c.finSent = true
	c.send(flagFIN|flagACK, c.sendNext, nil)
	c.sendNext++
}

// SetLinger sets what Close does with a connection, as (*net.TCPConn).SetLinger:
// with sec 0 Close sends an RST instead of a FIN. Other values keep the FIN (Close
// never waits).
func (c *StreamConn) SetLinger(sec int) error {
	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	c.linger0 = sec == 0
	return nil
}

// Close implements net.Conn: it sends a FIN (unless CloseWrite did), or an RST if
// received data is unread or after SetLinger(0), and frees the 4-tuple at once (no
// TIME_WAIT state; after a FIN, the peer's ACKs and FIN are dropped for TimeWait).
// Blocked and later reads and writes fail with net.ErrClosed. Closing twice is
// harmless.
func (c *StreamConn) Close() error {
	c.closeOnce.Do(func() {
		n := c.host.net
		n.mu.Lock()
		c.userClose = true
		graceful := false
		if !c.freed && c.state == stateEstablished {
			if c.linger0 || len(c.rbuf) > 0 {
				c.send(flagRST, 0, nil)
			} else {
				c.sendFIN()
				graceful = true
			}
		}
		c.free()
		if graceful {
			c.host.enterTimeWait(streamKey{c.local.Port(), c.remote})
		}
		n.mu.Unlock()
		close(c.closed)
		c.readDeadline.set(time.Time{})
		c.writeDeadline.set(time.Time{})
	})
	return nil
}

// LocalAddr implements net.Conn: a *net.TCPAddr with the host's own address, private
// if the host is behind a NAT.
func (c *StreamConn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.local) }

// RemoteAddr implements net.Conn: a *net.TCPAddr with the peer's endpoint as this end
// sees it, the NAT-mapped one if the peer is behind a NAT.
func (c *StreamConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

func (c *StreamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// enterTimeWait remembers, for TimeWait, that the connection on key was closed with
// a FIN; h.net.mu is held. Expired entries go when the table has doubled.
func (h *Host) enterTimeWait(key streamKey) {
	now := h.net.clock.Now()
	if len(h.timeWait) >= h.timeWaitSweep {
		for k, until := range h.timeWait {
			if !now.Before(until) {
				delete(h.timeWait, k)
			}
		}
		h.timeWaitSweep = max(2*len(h.timeWait), 64)
	}
	h.timeWait[key] = now.Add(TimeWait)
}

// closedGracefully reports whether the connection on key was closed with a FIN
// within TimeWait; h.net.mu is held.
func (h *Host) closedGracefully(key streamKey) bool {
	until, ok := h.timeWait[key]
	return ok && h.net.clock.Now().Before(until)
}
