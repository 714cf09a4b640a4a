package admin_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/admin"
)

func TestListenRefusesBadAddresses(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		addr, want string
	}{
		{"tcp://0.0.0.0:0", "not a loopback address"},
		{"tcp://[::]:0", "not a loopback address"},
		{"tcp://192.0.2.1:4000", "not a loopback address"},
		{"tcp://localhost:4000", "want"},
		{"tcp://127.0.0.1", "want"},
		{"127.0.0.1:4000", "want"},
		{"http://127.0.0.1:4000", "want"},
		{"unix:", "no socket path"},
		{"unix://relative/admin.sock", "absolute path"},
		{"", "want"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			ln, err := admin.Listen(tc.addr)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded", tc.addr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Listen(%q): %v, want it to say %q", tc.addr, err, tc.want)
			}
			if _, err := admin.Dial(context.Background(), tc.addr); err == nil {
				t.Errorf("Dial(%q) succeeded", tc.addr)
			}
		})
	}
}

func TestListenTCPLoopback(t *testing.T) {
	checkLeaks(t)
	for _, addr := range []string{"tcp://127.0.0.1:0", "tcp://[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := admin.Listen(addr)
			if err != nil {
				if strings.Contains(addr, "::1") {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			_, err = admin.Listen("tcp://" + ln.Addr().String())
			if !errors.Is(err, admin.ErrInUse) {
				t.Errorf("second Listen on %s: %v, want ErrInUse", ln.Addr(), err)
			}
		})
	}
}

func TestListenUnix(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")

	// A socket file left by a daemon that died: nothing answers there.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket file: %v", err)
	}

	ln, err := admin.Listen("unix://" + path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	if ln.Addr().String() != path {
		t.Errorf("Addr %s, want %s", ln.Addr(), path)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(entries))
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dialling the socket: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("Accept: %v", err)
	}

	// A live daemon is not displaced.
	_, err = admin.Listen("unix://" + path)
	if !errors.Is(err, admin.ErrInUse) || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("Listen over a live socket: %v, want ErrInUse (another daemon)", err)
	}

	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}

	// A file that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Listen("unix://" + path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v, want it refused", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("the regular file: %q, %v; want it untouched", b, err)
	}
}

func TestListenUnixRelative(t *testing.T) {
	checkLeaks(t)
	t.Chdir(t.TempDir())
	ln, err := admin.Listen("unix:admin.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := admin.Dial(context.Background(), "unix:admin.sock")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.Close()
}
