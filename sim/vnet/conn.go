package vnet

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// PacketConn is a datagram socket of a Host; it implements net.PacketConn with
// *net.UDPAddr addresses.
//
// Writes never block: the datagram is handed to the network, which delivers or drops
// it later through the scheduler (a write to an address nobody has is dropped and
// counted as DropUnroutable, as UDP would lose it silently). Reads take datagrams from
// a queue of Config.QueueLen; datagrams arriving at a full queue are dropped
// (DropQueueFull). A read into a buffer shorter than the datagram truncates it.
//
// Deadlines are in the network's scheduler time. With RealClock they behave as on
// real sockets. With a VirtualClock a deadline passes only when the clock is advanced
// to it: a ReadFrom blocked on an empty queue waits until another goroutine calls
// Advance (or RunUntilIdle, which only reaches the deadline if packets or timers
// keep time moving that far), and a deadline at or before Now fails at once.
type PacketConn struct {
	host  *Host
	local netip.AddrPort

	queue     chan datagram
	closed    chan struct{}
	closeOnce sync.Once

	deadlines
}

var _ net.PacketConn = (*PacketConn)(nil)

// datagram is a received datagram waiting to be read.
type datagram struct {
	from    netip.AddrPort
	payload []byte
}

func newPacketConn(h *Host, local netip.AddrPort, queueLen int) *PacketConn {
	return &PacketConn{
		host:      h,
		local:     local,
		queue:     make(chan datagram, queueLen),
		closed:    make(chan struct{}),
		deadlines: newDeadlines(h.net.clock),
	}
}

// ReadFrom implements net.PacketConn.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	expired := c.readDeadline.expired()
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", nil, net.ErrClosed)
	case <-expired:
		return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case d := <-c.queue:
		return copy(b, d.payload), net.UDPAddrFromAddrPort(d.from), nil
	case <-c.closed:
		return 0, nil, c.opError("read", nil, net.ErrClosed)
	case <-expired:
		return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	}
}

// WriteTo implements net.PacketConn. It copies b and returns len(b) whether or not
// the datagram will arrive.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opError("write", addr, ErrBadAddr)
	}
	select {
	case <-c.writeDeadline.expired():
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	default:
	}
	dst := ua.AddrPort()
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	p := packet{src: c.local, dst: dst, payload: append([]byte(nil), b...)}

	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-c.closed: // checked under the lock, so no datagram leaves a closed socket
		return 0, c.opError("write", addr, net.ErrClosed)
	default:
	}
	c.host.send(p)
	return len(b), nil
}

// Close implements net.PacketConn: it frees the port and makes blocked and later
// reads and writes fail with net.ErrClosed. Closing twice is harmless.
func (c *PacketConn) Close() error {
	c.closeOnce.Do(func() {
		n := c.host.net
		n.mu.Lock()
		c.host.closeSocket(c)
		n.mu.Unlock()
		close(c.closed)
		c.readDeadline.set(time.Time{})
		c.writeDeadline.set(time.Time{})
	})
	return nil
}

// LocalAddr implements net.PacketConn: the host's own address and port, private if
// the host is behind a NAT.
func (c *PacketConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// enqueue queues d unless the queue is full; the network is locked.
func (c *PacketConn) enqueue(d datagram) bool {
	select {
	case c.queue <- d:
		return true
	default:
		return false
	}
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// deadline is a settable point in scheduler time whose channel closes when it passes.
type deadline struct {
	clock Scheduler

	mu   sync.Mutex
	gen  uint64        // counts set calls, so a timer of an earlier deadline does nothing
	stop func() bool   // cancels the pending timer, if any
	done chan struct{} // closed once the deadline has passed
}

func newDeadline(clock Scheduler) *deadline {
	return &deadline{clock: clock, done: make(chan struct{})}
}

// set moves the deadline to t; the zero t means none. Blocked readers keep waiting on
// the same channel unless the old deadline had passed already.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.stop != nil {
		d.stop()
		d.stop = nil
	}
	select {
	case <-d.done: // passed before: later readers need a fresh channel
		d.done = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := t.Sub(d.clock.Now())
	if wait <= 0 {
		close(d.done)
		return
	}
	gen := d.gen
	d.stop = d.clock.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(d.done)
		}
	})
}

// expired returns a channel that is closed once the deadline has passed.
func (d *deadline) expired() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// deadlines are a socket's read and write deadlines, in its network's scheduler time
// (see PacketConn).
type deadlines struct {
	readDeadline, writeDeadline *deadline
}

func newDeadlines(clock Scheduler) deadlines {
	return deadlines{readDeadline: newDeadline(clock), writeDeadline: newDeadline(clock)}
}

// SetDeadline implements net.Conn and net.PacketConn.
func (d deadlines) SetDeadline(t time.Time) error {
	d.readDeadline.set(t)
	d.writeDeadline.set(t)
	return nil
}

// SetReadDeadline implements net.Conn and net.PacketConn.
func (d deadlines) SetReadDeadline(t time.Time) error {
	d.readDeadline.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn and net.PacketConn. Writes never block, so
// the deadline only matters once it has passed.
func (d deadlines) SetWriteDeadline(t time.Time) error {
	d.writeDeadline.set(t)
	return nil
}
