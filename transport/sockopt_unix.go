//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package transport

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// sharePort lets our other sockets bind the same address and port (SO_REUSEADDR,
// SO_REUSEPORT): a TCP listener and the dials that must leave from its port (STUN over
// TCP, hole punching), as the connector does.
func sharePort(_, _ string, rc syscall.RawConn) error {
	var opErr error
	err := rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			name string
			opt  int
		}{{"SO_REUSEADDR", unix.SO_REUSEADDR}, {"SO_REUSEPORT", unix.SO_REUSEPORT}} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt, 1); err != nil {
				opErr = fmt.Errorf("setting %s: %w", o.name, err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return opErr
}

// setHopLimit sets the IPv4 TTL or the IPv6 unicast hop limit of the socket's
// outgoing packets.
func setHopLimit(rc syscall.RawConn, ipv6 bool, hops int) error {
	level, opt, name := unix.IPPROTO_IP, unix.IP_TTL, "IP_TTL"
	if ipv6 {
		level, opt, name = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"
	}
	var opErr error
	err := rc.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), level, opt, hops); err != nil {
			opErr = fmt.Errorf("setting %s to %d: %w", name, hops, err)
		}
	})
	if err != nil {
		return err
	}
	return opErr
}
