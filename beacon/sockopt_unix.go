//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package beacon

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// shareSocket lets several sockets bind the beacon port (SO_REUSEADDR for the address,
// SO_REUSEPORT so that every one of them receives each broadcast) and send broadcasts.
func shareSocket(_, _ string, rc syscall.RawConn) error {
	var opErr error
	err := rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			name string
			opt  int
		}{{"SO_REUSEADDR", unix.SO_REUSEADDR}, {"SO_REUSEPORT", unix.SO_REUSEPORT}, {"SO_BROADCAST", unix.SO_BROADCAST}} {
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
