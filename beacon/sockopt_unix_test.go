//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package beacon

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// On Linux either SO_REUSEADDR or SO_REUSEPORT alone lets UDP sockets share a port and
// each hear broadcasts; the BSDs and macOS need SO_REUSEPORT. Check all are set.
func TestSocketOptions(t *testing.T) {
	c, err := Listen(t.Context(), Config{ID: seqID(1), Port: freePort(t), Addrs: []netip.Addr{loopbackBroadcast}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name string
		opt  int
	}{{"SO_REUSEADDR", unix.SO_REUSEADDR}, {"SO_REUSEPORT", unix.SO_REUSEPORT}, {"SO_BROADCAST", unix.SO_BROADCAST}} {
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil || v == 0 {
			t.Errorf("%s = %d, %v; want set", o.name, v, gerr)
		}
	}
}
