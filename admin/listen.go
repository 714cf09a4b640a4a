package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest unix socket path every platform binds (macOS: 104
// bytes with the terminating NUL; Linux allows 108).
const maxSocketPath = 103

// parseAddr splits an admin address into a network ("unix" or "tcp") and what to
// listen on or dial: a socket path or a loopback "ip:port".
func parseAddr(addr string) (network, target string, err error) {
	const want = `want "unix:///abs/path", "unix:relative/path", "tcp://127.0.0.1:PORT" or "tcp://[::1]:PORT"`
	switch {
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("admin address %q: unix:// takes an absolute path (unix:///run/crust/admin.sock); write unix:%s for a relative one", addr, path)
		}
		return "unix", path, nil
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(addr, "unix:")
		if path == "" {
			return "", "", fmt.Errorf("admin address %q: no socket path; %s", addr, want)
		}
		return "unix", path, nil
	case strings.HasPrefix(addr, "tcp://"):
		ap, err := netip.ParseAddrPort(strings.TrimPrefix(addr, "tcp://"))
		if err != nil {
			return "", "", fmt.Errorf("admin address %q: %v; %s", addr, err, want)
		}
		if !ap.Addr().Unmap().IsLoopback() {
			return "", "", fmt.Errorf("admin address %q: %s is not a loopback address, and the admin API has no authentication: use 127.0.0.1, [::1] or a unix socket", addr, ap.Addr())
		}
		return "tcp", ap.String(), nil
	default:
		return "", "", fmt.Errorf("admin address %q: %s", addr, want)
	}
}

// Listen opens the admin socket at addr: "unix:///abs/path", "unix:relative/path",
// "tcp://127.0.0.1:PORT" or "tcp://[::1]:PORT" (port 0 picks one; other TCP addresses
// are refused, the API having no authentication).
//
// A unix socket is created with mode 0600 and removed by the listener's Close. A
// socket file left by a daemon that died is replaced; if a daemon still answers there,
// Listen fails with ErrInUse. A file that is not a socket is left alone and refused.
func Listen(addr string) (net.Listener, error) {
	network, target, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		return listenUnix(target)
	}
	ln, err := net.Listen("tcp", target)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w %s: stop it first, or give this one another admin address (%v)", ErrInUse, addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	return ln, nil
}

// listenUnix binds the socket in a private directory beside path, so that nobody can
// connect before it is chmod 0600, then renames it into place (which also replaces a
// stale socket atomically).
func listenUnix(path string) (net.Listener, error) {
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".admin")
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	bind := filepath.Join(dir, "s")
	if len(bind) > maxSocketPath {
		bind = path // no room for the private directory: chmod right after bind
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bind, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the file moves: unixListener.Close removes it
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(bind)
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(bind, 0o600); err != nil {
		return fail(err)
	}
	if bind != path {
		if err := os.Rename(bind, path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ln, path: path, file: fi}, nil
}

// clearStaleSocket removes the socket at path if nothing answers there.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s: a file that is not a socket is in the way; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w %s: stop it first, or give this one another admin address", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: checking whether a daemon listens there: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// unixListener is a unix socket listener that reports its final path and removes its
// socket file on Close, unless another daemon has replaced the file since.
type unixListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo
	once sync.Once
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
	})
	return err
}
