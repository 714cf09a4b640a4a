package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateCreatesThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "node")
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("creating: %v", err)
	}
	path := filepath.Join(dir, KeyFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("data dir: %v, mode %v; want no access for others", err, st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s", len(entries), KeyFileName)
	}
	content, _ := os.ReadFile(path)

	second, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("reloading: %v", err)
	}
	if second.ID() != first.ID() {
		t.Fatalf("reload gave node %s, created %s", second.ID(), first.ID())
	}
	if !second.PrivateKey().Equal(first.PrivateKey()) {
		t.Fatalf("reload gave another private key")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Fatalf("reloading rewrote the key file")
	}
	if first.ID().IsZero() || !bytes.Equal(first.ID().PublicKey(), first.PrivateKey().Public().(ed25519.PublicKey)) {
		t.Fatalf("ID %s is not the public key", first.ID())
	}

	// A key file the owner alone can read, but not write, is fine too.
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if third, err := LoadOrCreate(dir); err != nil || third.ID() != first.ID() {
		t.Fatalf("read-only key file: %v", err)
	}
}

func TestLoadOrCreateDistinctDirs(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() {
		t.Fatalf("two data dirs got the same node ID %s", a.ID())
	}
}

func TestLoadOrCreateRefusesBadFiles(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	goodPEM := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: seed})
	tests := []struct {
		name    string
		content []byte
		mode    fs.FileMode
		wantMsg string
	}{
		{"world readable", goodPEM, 0o644, "chmod 600"},
		{"group readable", goodPEM, 0o640, "chmod 600"},
		{"others writable", goodPEM, 0o602, "chmod 600"},
		{"empty", nil, 0o600, "not a PEM block"},
		{"garbage", []byte("not a key\n"), 0o600, "not a PEM block"},
		{"raw seed without PEM", seed, 0o600, "not a PEM block"},
		{"other PEM type", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: seed}), 0o600, "not a PEM block"},
		{"short key", pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: seed[:31]}), 0o600, "31 key bytes, want 32"},
		{"long key", pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: append(seed, seed...)}), 0o600, "64 key bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // not subject to umask
				t.Fatal(err)
			}
			ident, err := LoadOrCreate(dir)
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("LoadOrCreate = %v, %v; want ErrBadKeyFile", ident, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %s and say %q", err, path, tt.wantMsg)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tt.content) {
				t.Fatalf("the bad key file was replaced or removed (%v)", err)
			}
		})
	}
}

func TestLoadOrCreateUnusablePath(t *testing.T) {
	t.Run("key path is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, KeyFileName), 0o700); err != nil {
			t.Fatal(err)
		}
		if ident, err := LoadOrCreate(dir); err == nil {
			t.Fatalf("LoadOrCreate = %v, want an error", ident.ID())
		}
	})
	t.Run("dangling symlink", func(t *testing.T) {
		// ReadFile finds nothing and O_EXCL finds something: this used to recurse
		// until the stack overflowed.
		dir := t.TempDir()
		if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, KeyFileName)); err != nil {
			t.Skipf("no symlinks here: %v", err)
		}
		if ident, err := LoadOrCreate(dir); err == nil {
			t.Fatalf("LoadOrCreate = %v, want an error", ident.ID())
		}
		if _, err := os.Stat(filepath.Join(dir, "elsewhere")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a key was created through the symlink (%v)", err)
		}
	})
	t.Run("data dir is a file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(dir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if ident, err := LoadOrCreate(dir); err == nil {
			t.Fatalf("LoadOrCreate = %v, want an error", ident.ID())
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads any file")
		}
		dir := t.TempDir()
		if _, err := LoadOrCreate(dir); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, KeyFileName)
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		if ident, err := LoadOrCreate(dir); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("LoadOrCreate = %v, %v; want a permission error", ident, err)
		}
	})
}

// TestLoadOrCreateConcurrent starts several nodes on one fresh data dir at once: they
// must all end up with the same key. Writing the key in place used to let the others
// read a half-written file and fail with advice to move it aside.
func TestLoadOrCreateConcurrent(t *testing.T) {
	for range 50 {
		dir := filepath.Join(t.TempDir(), "data")
		const n = 8
		ids := make([]NodeID, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var ident *Identity
				ident, errs[i] = LoadOrCreate(dir)
				if ident != nil {
					ids[i] = ident.ID()
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("callers got different IDs: %s and %s", ids[0], ids[i])
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("data dir holds %d entries, want only %s", len(entries), KeyFileName)
		}
	}
}
