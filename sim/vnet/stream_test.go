package vnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

var (
	webAddr  = netip.MustParseAddrPort("198.51.100.10:443")
	webAlt   = netip.MustParseAddrPort("198.51.100.10:444")
	nowhere  = netip.MustParseAddrPort("192.0.2.99:80") // no host has it
	outsider = netip.MustParseAddr("198.51.100.20")
)

func mustListen(t *testing.T, h *Host, port int) *Listener {
	t.Helper()
	l, err := h.Listen(port)
	if err != nil {
		t.Fatalf("listening on %s port %d: %v", h.Addr(), port, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dialStart sends the SYN of a connection from lport (0: ephemeral) without waiting,
// so that a VirtualClock test can run the handshake; see dialState.
func dialStart(t *testing.T, h *Host, lport int, raddr netip.AddrPort) *StreamConn {
	t.Helper()
	c, err := h.connect(lport, raddr)
	if err != nil {
		t.Fatalf("dialling %s from %s port %d: %v", raddr, h.Addr(), lport, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialState reports whether the handshake of active connection c has ended, and
// how.
func dialState(c *StreamConn) (done bool, err error) {
	select {
	case <-c.connected:
	default:
		return false, nil
	}
	n := c.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	return true, c.dialErr
}

func mustConnected(t *testing.T, c *StreamConn) {
	t.Helper()
	if done, err := dialState(c); !done || err != nil {
		t.Fatalf("dial %v -> %v: done %v, err %v; want established", c.local, c.remote, done, err)
	}
}

// acceptNow takes an accepted connection without waiting; nil if none is queued.
func acceptNow(l *Listener) *StreamConn {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(l.queue) == 0 {
		return nil
	}
	c := l.queue[0]
	l.queue = l.queue[1:]
	return c
}

func mustAccept(t *testing.T, l *Listener) *StreamConn {
	t.Helper()
	c := acceptNow(l)
	if c == nil {
		t.Fatalf("listener %v has no connection", l.local)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readNow reads what c has received without waiting: the bytes, and the error Read
// gives once they are read (nil if it would block).
func readNow(c *StreamConn) (string, error) {
	n := c.host.net
	n.mu.Lock()
	data := string(c.rbuf)
	c.rbuf = nil
	blocks := c.resetErr == nil && !c.eof && !c.userClose
	n.mu.Unlock()
	if blocks {
		return data, nil
	}
	_, err := c.Read(make([]byte, 1))
	return data, err
}

func write(t *testing.T, c *StreamConn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("writing from %v: %v", c.local, err)
	}
}

func expectRead(t *testing.T, c *StreamConn, want string, wantErr error) {
	t.Helper()
	got, err := readNow(c)
	if got != want || !errors.Is(err, wantErr) && err != wantErr {
		t.Fatalf("%v read %q, then %v; want %q, then %v", c.local, got, err, want, wantErr)
	}
}

// tcpMapping returns the external endpoint of the one TCP mapping r has for
// internal.
func tcpMapping(t *testing.T, r *Router, internal netip.AddrPort) netip.AddrPort {
	t.Helper()
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	var found []netip.AddrPort
	for k, m := range r.mappings {
		if k.proto == protoTCP && k.internal == internal {
			found = append(found, m.external)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%v has TCP mappings %v for %v, want one", r, found, internal)
	}
	return found[0]
}

// insideAddr is the address of a host behind a router of kind cfg on public: a
// private one behind a NAT, a routable one behind a firewall.
func insideAddr(public netip.Addr, cfg NATConfig) netip.Addr {
	if !cfg.FirewallOnly {
		return lanHost
	}
	ip := public.As4()
	ip[3] += 100
	return netip.AddrFrom4(ip)
}

var natKinds = []struct {
	name string
	cfg  NATConfig
}{
	{"FullCone", FullCone()},
	{"RestrictedCone", RestrictedCone()},
	{"PortRestrictedCone", PortRestrictedCone()},
	{"Symmetric", Symmetric()},
	{"Firewall", Firewall()},
}

// TestStreamThroughNAT dials a public listener from behind each kind of NAT and runs
// a whole connection: bytes both ways, a half-close, the close.
func TestStreamThroughNAT(t *testing.T) {
	for _, kind := range natKinds {
		t.Run(kind.name, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
			r := mustNAT(t, n, natPublic, kind.cfg)
			r.SetLink(Link{Latency: 10 * time.Millisecond})
			h := mustHost(t, r, insideAddr(natPublic, kind.cfg))

			c := dialStart(t, h, 0, webAddr)
			clk.RunUntilIdle()
			mustConnected(t, c)
			s := mustAccept(t, srv)
			if got, want := s.RemoteAddr().(*net.TCPAddr).AddrPort(), tcpMapping(t, r, c.local); got != want {
				t.Fatalf("server sees %v, want the NAT's mapping %v", got, want)
			}
			if kind.cfg.FirewallOnly && s.remote != c.local {
				t.Fatalf("firewall translated %v to %v", c.local, s.remote)
			}
			if got := c.RemoteAddr().(*net.TCPAddr).AddrPort(); got != webAddr {
				t.Fatalf("client's RemoteAddr = %v, want %v", got, webAddr)
			}

			write(t, c, "hello ")
			write(t, c, "server")
			clk.RunUntilIdle()
			expectRead(t, s, "hello server", nil)
			write(t, s, "hello client")
			clk.RunUntilIdle()
			expectRead(t, c, "hello client", nil)

			// Half-close: the server reads EOF and can still answer.
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
			}
			clk.RunUntilIdle()
			expectRead(t, s, "", io.EOF)
			write(t, s, "bye")
			s.Close()
			clk.RunUntilIdle()
			expectRead(t, c, "bye", io.EOF)
			c.Close()
			clk.RunUntilIdle()

			if st := n.Stats(); st.Dropped[DropNoConnection] != 0 || st.Dropped[DropUnexpected] != 0 {
				t.Fatalf("drops %v, want none after a clean close", st.Dropped)
			}
			for _, host := range []*Host{h, srv.host} {
				if len(host.streams) != 0 || len(host.tcpPorts) != 0 {
					t.Fatalf("%v still holds connections %v", host, host.streams)
				}
			}
		})
	}
}

// TestDialAndAcceptBlocking runs the blocking API in wall-clock time: Accept, Dial,
// Read with a deadline.
func TestDialAndAcceptBlocking(t *testing.T) {
	n := New(Config{})
	ln := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	r.SetLink(Link{Latency: time.Millisecond})
	h := mustHost(t, r, lanHost)

	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, webAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	s := a.c
	defer s.Close()
	if got := s.RemoteAddr().(*net.TCPAddr).AddrPort(); got.Addr() != natPublic {
		t.Fatalf("server sees %v, want the NAT's address %v", got, natPublic)
	}

	// A blocked Read returns the data once it arrives.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 10)
	k, err := s.Read(buf)
	if err != nil || string(buf[:k]) != "ping" {
		t.Fatalf("read %q, %v; want %q", buf[:k], err, "ping")
	}
	// Nothing more comes: the deadline ends the Read.
	s.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := s.Read(buf); !isTimeout(err) {
		t.Fatalf("read without data: %v, want a timeout", err)
	}
	// The peer's FIN ends a blocked Read with io.EOF.
	s.SetReadDeadline(time.Time{})
	c.Close()
	if _, err := s.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	// Close ends a blocked Accept.
	go func() {
		_, err := ln.Accept()
		acc <- accepted{nil, err}
	}()
	ln.Close()
	if a := <-acc; !errors.Is(a.err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", a.err)
	}
}

func TestDialRefusedAndTimeout(t *testing.T) {
	n := New(Config{})
	mustHost(t, n, webAddr.Addr()) // no listener
	h := mustHost(t, n, outsider)

	_, err := h.Dial(context.Background(), webAddr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a port without listener: %v, want ECONNREFUSED", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = h.Dial(ctx, nowhere)
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial to an unroutable address: %v, want a timeout wrapping context.DeadlineExceeded", err)
	}
	if len(h.streams) != 0 {
		t.Fatalf("the abandoned dial still holds %v", h.streams)
	}
}

// TestSYNRetransmission: an unanswered SYN goes out again after 1 s, 2 s, 4 s, ...
// and the dial fails with ETIMEDOUT after the sixth retransmission, as on Linux.
func TestSYNRetransmission(t *testing.T) {
	clk := NewVirtualClock(VirtualEpoch)
	var sent []time.Duration
	n := New(Config{Clock: clk, Trace: func(e Event) {
		if e.Kind == EventSend && e.Flags == "SYN" {
			sent = append(sent, e.Time.Sub(VirtualEpoch))
		}
	}})
	h := mustHost(t, n, outsider)
	c := dialStart(t, h, 0, nowhere)
	clk.RunUntilIdle()
	want := []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 31 * time.Second, 63 * time.Second}
	if len(sent) != len(want) {
		t.Fatalf("SYNs sent at %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("SYNs sent at %v, want %v", sent, want)
		}
	}
	done, err := dialState(c)
	var ne net.Error
	if !done || !errors.Is(err, syscall.ETIMEDOUT) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial: done %v, %v; want ETIMEDOUT", done, err)
	}
	if got := clk.Now().Sub(VirtualEpoch); got != 127*time.Second {
		t.Fatalf("gave up after %v, want 127s", got)
	}
}

// TestPortSharing: a listener's port is shared with DialFrom, one connection per
// 4-tuple.
func TestPortSharing(t *testing.T) {
	n, clk := newTestNet(t, 1)
	web := mustHost(t, n, webAddr.Addr())
	srv := mustListen(t, web, int(webAddr.Port()))
	srvAlt := mustListen(t, web, int(webAlt.Port()))
	h := mustHost(t, n, outsider)
	mustListen(t, h, 5000)

	c1 := dialStart(t, h, 5000, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, c1)
	s1 := mustAccept(t, srv)
	if got := s1.remote; got != netip.AddrPortFrom(outsider, 5000) {
		t.Fatalf("server sees %v, want the listen port %v", got, netip.AddrPortFrom(outsider, 5000))
	}

	if _, err := h.DialFrom(context.Background(), 5000, webAddr); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("second DialFrom on the same 4-tuple: %v, want EADDRNOTAVAIL", err)
	}
	c2 := dialStart(t, h, 5000, webAlt) // another 4-tuple from the same port
	clk.RunUntilIdle()
	mustConnected(t, c2)
	mustAccept(t, srvAlt)

	if _, err := h.Listen(5000); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on the port: %v, want EADDRINUSE", err)
	}
	if _, err := h.ListenPacket(5000); err != nil {
		t.Fatalf("a UDP socket on the TCP listener's port: %v", err)
	}
	plain := dialStart(t, h, 0, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, plain)
	mustAccept(t, srv)
	if _, err := h.DialFrom(context.Background(), int(plain.local.Port()), webAlt); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("DialFrom the port of a plain Dial: %v, want EADDRINUSE", err)
	}

	// Once closed, the 4-tuple can be dialled again at once (no TIME_WAIT). The
	// server still holds its end (it read our FIN but has not closed): our SYN gets
	// a challenge ACK, our RST ends the server's end, and the retransmitted SYN
	// makes the new connection.
	c1.Close()
	clk.RunUntilIdle()
	c3 := dialStart(t, h, 5000, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, c3)
	expectRead(t, s1, "", syscall.ECONNRESET)
	s3 := mustAccept(t, srv)
	write(t, c3, "again")
	clk.RunUntilIdle()
	expectRead(t, s3, "again", nil)
}

// TestUnsolicitedSYN: a SYN to a NAT's public address that no mapping and filter let
// in is dropped, or answered with an RST by a rejecting NAT; an endpoint-independent
// filter lets it through to the inside listener.
func TestUnsolicitedSYN(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NATConfig
		mapped  bool  // the inside host has opened a mapping from its listen port
		want    error // nil: connected
		dropped DropReason
	}{
		{"NoMapping", PortRestrictedCone(), false, syscall.ETIMEDOUT, DropUnsolicitedSYN},
		{"Filtered", PortRestrictedCone(), true, syscall.ETIMEDOUT, DropUnsolicitedSYN},
		{"NoMappingReject", withReject(PortRestrictedCone()), false, syscall.ECONNREFUSED, DropRejectedSYN},
		{"FilteredReject", withReject(PortRestrictedCone()), true, syscall.ECONNREFUSED, DropRejectedSYN},
		{"FirewallReject", withReject(Firewall()), true, syscall.ECONNREFUSED, DropRejectedSYN},
		{"FullConeMapped", FullCone(), true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			web := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
			r := mustNAT(t, n, natPublic, tt.cfg)
			h := mustHost(t, r, insideAddr(natPublic, tt.cfg))
			ln := mustListen(t, h, 5000)
			target := netip.AddrPortFrom(natPublic, 5000)
			if tt.cfg.FirewallOnly {
				target = netip.AddrPortFrom(h.Addr(), 5000)
			}
			if tt.mapped {
				c := dialStart(t, h, 5000, webAddr)
				clk.RunUntilIdle()
				mustConnected(t, c)
				mustAccept(t, web)
				target = tcpMapping(t, r, c.local)
			}

			x := mustHost(t, n, outsider)
			c := dialStart(t, x, 0, target)
			clk.RunUntilIdle()
			done, err := dialState(c)
			if !done || !errors.Is(err, tt.want) && err != tt.want {
				t.Fatalf("dial to %v: done %v, %v; want %v", target, done, err, tt.want)
			}
			if tt.want == nil {
				s := mustAccept(t, ln)
				if s.remote != c.local {
					t.Fatalf("inside listener sees %v, want %v", s.remote, c.local)
				}
				return
			}
			if got := n.Stats().Dropped[tt.dropped]; got == 0 {
				t.Fatalf("no SYN dropped as %q: %v", tt.dropped, n.Stats().Dropped)
			}
		})
	}
}

func withReject(cfg NATConfig) NATConfig {
	cfg.TCPUnsolicited = RejectSYN
	return cfg
}

// TestTCPMappingTimeout: a NAT keeps the TCP mapping of an established connection
// for TCPEstablishedTimeout of idleness, and falls back to MappingTimeout once the
// connection is closed or if it never got established.
func TestTCPMappingTimeout(t *testing.T) {
	cfg := PortRestrictedCone()
	cfg.MappingTimeout = 30 * time.Second
	n, clk := newTestNet(t, 1)
	srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	r := mustNAT(t, n, natPublic, cfg)
	h := mustHost(t, r, lanHost)

	c := dialStart(t, h, 0, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, c)
	s := mustAccept(t, srv)
	clk.Advance(time.Hour) // idle, far past MappingTimeout
	if got := r.Mappings(); got != 1 {
		t.Fatalf("mappings after an idle hour: %d, want 1", got)
	}
	write(t, s, "still there")
	clk.RunUntilIdle()
	expectRead(t, c, "still there", nil)

	c.Close()
	s.Close()
	clk.RunUntilIdle()
	clk.Advance(cfg.MappingTimeout - time.Second)
	if got := r.Mappings(); got != 1 {
		t.Fatalf("mappings just after the close: %d, want 1", got)
	}
	clk.Advance(time.Second)
	if got := r.Mappings(); got != 0 {
		t.Fatalf("mappings MappingTimeout after the close: %d, want 0", got)
	}

	// Idle longer than TCPEstablishedTimeout, even an open connection loses it.
	c = dialStart(t, h, 0, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, c)
	s = mustAccept(t, srv)
	clk.Advance(TCPEstablishedTimeout)
	if got := r.Mappings(); got != 0 {
		t.Fatalf("mappings after TCPEstablishedTimeout idle: %d, want 0", got)
	}
	write(t, s, "lost")
	clk.RunUntilIdle()
	expectRead(t, c, "", nil)

	// A connect that never completes keeps only MappingTimeout.
	c = dialStart(t, h, 0, nowhere)
	clk.Advance(10 * time.Millisecond)
	c.Close()
	clk.Advance(cfg.MappingTimeout)
	if got := r.Mappings(); got != 0 {
		t.Fatalf("mappings after an abandoned connect: %d, want 0", got)
	}
}

// TestUDPAndTCPShareNumbers: a host's UDP socket and TCP listener may both use a
// port, and a NAT maps them separately, both to the same preserved port.
func TestUDPAndTCPShareNumbers(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := newServers(t, n, stunAddr)
	web := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	h := mustHost(t, r, lanHost)
	u := listen(t, h, 5000)
	mustListen(t, h, 5000)

	if got := stunLookup(t, clk, u, srv.conns[stunAddr]); got != netip.AddrPortFrom(natPublic, 5000) {
		t.Fatalf("UDP mapping %v, want %v", got, netip.AddrPortFrom(natPublic, 5000))
	}
	c := dialStart(t, h, 5000, webAddr)
	clk.RunUntilIdle()
	mustConnected(t, c)
	if got := mustAccept(t, web).remote; got != netip.AddrPortFrom(natPublic, 5000) {
		t.Fatalf("TCP mapping %v, want %v", got, netip.AddrPortFrom(natPublic, 5000))
	}
	if got := r.Mappings(); got != 2 {
		t.Fatalf("mappings: %d, want one UDP and one TCP", got)
	}
}

// TestBacklog: SYNs beyond the backlog are dropped; the dialler's retransmission gets
// in once Accept has made room.
func TestBacklog(t *testing.T) {
	clk := NewVirtualClock(VirtualEpoch)
	n := New(Config{Clock: clk, Backlog: 2})
	srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	h := mustHost(t, n, outsider)
	var cs []*StreamConn
	for range 3 {
		cs = append(cs, dialStart(t, h, 0, webAddr))
	}
	clk.Advance(100 * time.Millisecond)
	mustConnected(t, cs[0])
	mustConnected(t, cs[1])
	if done, _ := dialState(cs[2]); done {
		t.Fatal("third dial ended; want its SYN dropped and retransmitted")
	}
	if got := n.Stats().Dropped[DropBacklogFull]; got != 1 {
		t.Fatalf("backlog-full drops: %d, want 1", got)
	}
	mustAccept(t, srv)
	clk.Advance(time.Second)
	mustConnected(t, cs[2])
}

// TestResetOnClose: Close sends an RST instead of a FIN after SetLinger(0) or with
// unread data, and the peer's reads and writes fail with ECONNRESET.
func TestResetOnClose(t *testing.T) {
	for _, how := range []string{"linger0", "unread"} {
		t.Run(how, func(t *testing.T) {
			n, clk := newTestNet(t, 1)
			srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
			c := dialStart(t, mustHost(t, n, outsider), 0, webAddr)
			clk.RunUntilIdle()
			s := mustAccept(t, srv)
			write(t, s, "data")
			clk.RunUntilIdle()
			if how == "linger0" {
				expectRead(t, c, "data", nil)
				if err := c.SetLinger(0); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			clk.RunUntilIdle()
			expectRead(t, s, "", syscall.ECONNRESET)
			if _, err := s.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("write after the peer's RST: %v, want ECONNRESET", err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestStreamDeadlinesOnVirtualClock: a blocked Read times out when virtual time
// reaches the deadline, and Close ends a blocked Read.
func TestStreamDeadlinesOnVirtualClock(t *testing.T) {
	n, clk := newTestNet(t, 1)
	srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	c := dialStart(t, mustHost(t, n, outsider), 0, webAddr)
	clk.RunUntilIdle()
	mustAccept(t, srv)

	c.SetReadDeadline(clk.Now().Add(time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		errc <- err
	}()
	clk.Advance(time.Second)
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("blocked read: %v, want a timeout", err)
	}
	c.SetWriteDeadline(clk.Now())
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("write with a passed deadline: %v, want a timeout", err)
	}

	c.SetDeadline(time.Time{})
	go func() {
		_, err := c.Read(make([]byte, 10))
		errc <- err
	}()
	c.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked read after Close: %v, want net.ErrClosed", err)
	}
}

// TestListenerClose resets the connections a listener has not handed out.
func TestListenerClose(t *testing.T) {
	n, clk := newTestNet(t, 1)
	web := mustHost(t, n, webAddr.Addr())
	srv := mustListen(t, web, int(webAddr.Port()))
	c := dialStart(t, mustHost(t, n, outsider), 0, webAddr)
	clk.RunUntilIdle()
	srv.Close()
	clk.RunUntilIdle()
	expectRead(t, c, "", syscall.ECONNRESET)
	if _, err := srv.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	mustListen(t, web, int(webAddr.Port())) // the port is free again
}

// TestStreamOrderOnRealClock writes many segments over zero-latency links, where the
// real clock's timers may reorder them: the reader gets the bytes in order.
func TestStreamOrderOnRealClock(t *testing.T) {
	n := New(Config{})
	srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
	h := mustHost(t, n, outsider)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, webAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var want []byte
	for i := range 500 {
		b := []byte{byte(i), byte(i >> 8)}
		want = append(want, b...)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseWrite()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(s)
	if err != nil || string(got) != string(want) {
		t.Fatalf("read %d bytes (%v), want the %d written, in order", len(got), err, len(want))
	}
}

// TestTimeWait: after a close with a FIN, the peer's FIN (and ACKs) to the freed
// 4-tuple are dropped without an RST for TimeWait, as a socket in TIME_WAIT takes
// them; later, or after an RST close, they are answered with an RST.
func TestTimeWait(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wait  time.Duration
		reset bool // the server closes with an RST
		rst   bool // the server answers the client's FIN with an RST
	}{
		{"within", TimeWait - time.Second, false, false},
		{"after", TimeWait, false, true},
		{"reset", 0, true, false}, // its RST freed the client's end: no FIN comes
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewVirtualClock(VirtualEpoch)
			rsts := 0
			n := New(Config{Clock: clk, Trace: func(e Event) {
				if e.Kind == EventSend && e.Flags == "RST" && e.Src == webAddr {
					rsts++
				}
			}})
			srv := mustListen(t, mustHost(t, n, webAddr.Addr()), int(webAddr.Port()))
			c := dialStart(t, mustHost(t, n, outsider), 0, webAddr)
			clk.RunUntilIdle()
			s := mustAccept(t, srv)
			write(t, s, "bye")
			if tc.reset {
				s.SetLinger(0)
			}
			s.Close()
			clk.RunUntilIdle()
			if !tc.reset {
				expectRead(t, c, "bye", io.EOF)
			}
			rstsAtClose := rsts
			clk.Advance(tc.wait)
			c.Close()
			clk.RunUntilIdle()
			if got := rsts - rstsAtClose; (got > 0) != tc.rst {
				t.Fatalf("the server sent %d RSTs for the client's FIN, want any: %v", got, tc.rst)
			}
		})
	}
}
