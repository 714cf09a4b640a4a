//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package beacon

import "syscall"

// shareSocket sets nothing where SO_REUSEPORT is unavailable: only one node per host
// can then bind the beacon port. (Go already enables broadcast on UDP sockets.)
func shareSocket(_, _ string, _ syscall.RawConn) error { return nil }
