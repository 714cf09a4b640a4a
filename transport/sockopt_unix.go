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
