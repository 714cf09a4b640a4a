package vnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestListenPacketPorts(t *testing.T) {
	n, _ := newTestNet(t, 1)
	h := mustHost(t, n, netip.MustParseAddr("192.0.2.1"))
	c := listen(t, h, 5000)
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != netip.MustParseAddrPort("192.0.2.1:5000") {
		t.Fatalf("LocalAddr = %v, want 192.0.2.1:5000", got)
	}
	_, err := h.ListenPacket(5000)
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second listen on port 5000: %v, want address in use", err)
	}

	a, b := listen(t, h, 0), listen(t, h, 0)
	pa, pb := a.local.Port(), b.local.Port()
	if pa == pb || pa < firstEphemeral || pb < firstEphemeral {
		t.Fatalf("port 0 gave %d and %d, want two different ephemeral ports", pa, pb)
	}
	c.Close()
	listen(t, h, 5000) // free again once closed
}

func TestReceiveQueueFull(t *testing.T) {
	clk := NewVirtualClock(VirtualEpoch)
	n := New(Config{Clock: clk, QueueLen: 2})
	a := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.1")), 5000)
	b := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.2")), 5000)
	for range 5 {
		send(t, a, b.local, "x")
	}
	clk.RunUntilIdle()
	if st := n.Stats(); st.Delivered != 2 || st.Dropped[DropQueueFull] != 3 {
		t.Fatalf("delivered %d, dropped as queue full %d; want 2 and 3", st.Delivered, st.Dropped[DropQueueFull])
	}
}

func TestReadFrom(t *testing.T) {
	n, clk := newTestNet(t, 1)
	a := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.1")), 5000)
	b := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.2")), 6000)
	send(t, a, b.local, "hello world")
	clk.RunUntilIdle()

	buf := make([]byte, 5)
	nr, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:nr]) != "hello" || from.(*net.UDPAddr).AddrPort() != a.local {
		t.Fatalf("read %q from %v, want the truncated %q from %v", buf[:nr], from, "hello", a.local)
	}
}

func TestDeadlinesOnVirtualClock(t *testing.T) {
	n, clk := newTestNet(t, 1)
	c := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.1")), 5000)

	c.SetReadDeadline(clk.Now())
	if _, _, err := c.ReadFrom(make([]byte, 10)); !isTimeout(err) {
		t.Fatalf("read with a passed deadline: %v, want a timeout", err)
	}
	c.SetWriteDeadline(clk.Now())
	if _, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(stunAddr)); !isTimeout(err) {
		t.Fatalf("write with a passed deadline: %v, want a timeout", err)
	}

	// A blocked read times out when virtual time reaches the deadline.
	c.SetDeadline(clk.Now().Add(time.Second))
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	clk.Advance(time.Second)
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("blocked read: %v, want a timeout", err)
	}

	// Clearing the deadline makes reads wait for data again.
	c.SetDeadline(time.Time{})
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	clk.RunUntilIdle()
	if _, _, err := c.ReadFrom(make([]byte, 10)); err != nil {
		t.Fatalf("read after clearing the deadline: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestClose(t *testing.T) {
	n, _ := newTestNet(t, 1)
	c := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.1")), 5000)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(stunAddr)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
}

func TestWriteToBadAddr(t *testing.T) {
	n, _ := newTestNet(t, 1)
	c := listen(t, mustHost(t, n, netip.MustParseAddr("192.0.2.1")), 5000)
	if _, err := c.WriteTo([]byte("x"), &net.TCPAddr{}); !errors.Is(err, ErrBadAddr) {
		t.Fatalf("write to a TCP address: %v, want ErrBadAddr", err)
	}
}

// TestRealClock exchanges a datagram in wall-clock time, through a NAT with a
// millisecond of latency.
func TestRealClock(t *testing.T) {
	n := New(Config{})
	srv := listen(t, mustHost(t, n, stunAddr.Addr()), int(stunAddr.Port()))
	r := mustNAT(t, n, natPublic, PortRestrictedCone())
	r.SetLink(Link{Latency: time.Millisecond})
	c := listen(t, mustHost(t, r, lanHost), 5000)

	send(t, c, stunAddr, "hello")
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	_, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WriteTo([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	nr, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:nr]) != "reply" || from.String() != stunAddr.String() {
		t.Fatalf("read %q from %v (%v), want %q from %v", buf[:nr], from, err, "reply", stunAddr)
	}
}
