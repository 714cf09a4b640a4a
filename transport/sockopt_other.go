//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package transport

import (
	"errors"
	"syscall"
)

// sharePort sets nothing where SO_REUSEPORT is unavailable: dials from the listen
// port then fail to bind, and callers fall back to an ephemeral port.
func sharePort(_, _ string, _ syscall.RawConn) error { return nil }

// setHopLimit is not implemented here: firewall punching is unavailable.
func setHopLimit(_ syscall.RawConn, _ bool, _ int) error {
	return errors.ErrUnsupported
}
