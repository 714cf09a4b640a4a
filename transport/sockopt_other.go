//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package transport

import "syscall"

// sharePort sets nothing where SO_REUSEPORT is unavailable: dials from the listen
// port then fail to bind, and callers fall back to an ephemeral port.
func sharePort(_, _ string, _ syscall.RawConn) error { return nil }
