package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// testID returns a NodeID whose bytes are all b.
func testID(b byte) identity.NodeID {
	var id identity.NodeID
	for i := range id {
		id[i] = b
	}
	return id
}

func ep(s string) transport.Endpoint {
	e, err := transport.ParseEndpoint(s)
	if err != nil {
		panic(err)
	}
	return e
}

func contact(b byte, eps ...string) transport.Contact {
	c := transport.Contact{ID: testID(b)}
	for _, s := range eps {
		c.Endpoints = append(c.Endpoints, ep(s))
	}
	return c
}

// logBuffer collects log output so a test can check what was reported.
type logBuffer struct{ bytes.Buffer }

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&l.Buffer, nil)) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a cache in dir and closes it at the end of the test.
func open(t *testing.T, cfg Config) *Cache {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ids(cs []transport.Contact) []identity.NodeID {
	out := make([]identity.NodeID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := open(t, Config{Dir: dir})
	a := contact(1, "tcp://192.0.2.1:5483", "quic://192.0.2.1:5483")
	a.UPnP = []transport.Endpoint{ep("tcp://198.51.100.1:6000")}
	a.Reflected = []transport.Endpoint{ep("quic://198.51.100.1:7000")} // not kept
	c.RecordSuccess(a, t0.Add(time.Second))
	c.RecordSuccess(contact(2, "tcp://[2001:db8::2]:5483"), t0)
	c.RecordFailure(testID(2), t0.Add(time.Minute))
	c.Add(contact(3, "tcp://10.0.0.3:5483"))
	if !c.Dirty() {
		t.Fatal("not dirty after changes")
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if c.Dirty() {
		t.Fatal("dirty after Save")
	}
	want := c.Entries()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	data, err := os.ReadFile(filepath.Join(dir, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"version": 1`, `"id": "` + testID(1).String() + `"`, `"tcp://192.0.2.1:5483"`, `"last_success": "2025-03-04T05:06:08Z"`, `"failures": 1`} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("file lacks %s:\n%s", s, data)
		}
	}
	if bytes.Contains(data, []byte("7000")) {
		t.Errorf("file holds a reflected endpoint:\n%s", data)
	}

	c2 := open(t, Config{Dir: dir})
	got := c2.Entries()
	if len(got) != len(want) {
		t.Fatalf("loaded %d entries, saved %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || !slices.Equal(g.Endpoints, w.Endpoints) || !g.LastSuccess.Equal(w.LastSuccess) || g.Failures != w.Failures {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
	if c2.Dirty() {
		t.Error("dirty right after load")
	}
	wantEps := []transport.Endpoint{ep("tcp://192.0.2.1:5483"), ep("quic://192.0.2.1:5483"), ep("tcp://198.51.100.1:6000")}
	if !slices.Equal(got[0].Endpoints, wantEps) {
		t.Errorf("endpoints %v, want %v", got[0].Endpoints, wantEps)
	}
}

func TestRanking(t *testing.T) {
	c := open(t, Config{Dir: t.TempDir(), Max: 3})
	c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
	c.RecordSuccess(contact(2, "tcp://192.0.2.2:1"), t0.Add(2*time.Second))
	c.RecordSuccess(contact(3, "tcp://192.0.2.3:1"), t0.Add(2*time.Second))
	c.RecordFailure(testID(2), t0.Add(3*time.Second))
	if got, want := ids(c.Contacts(0)), []identity.NodeID{testID(3), testID(2), testID(1)}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}

	// A contact that never succeeded ranks last and is the one dropped over the bound.
	c.Add(contact(4, "tcp://192.0.2.4:1"))
	if got, want := ids(c.Contacts(0)), []identity.NodeID{testID(3), testID(2), testID(1)}; !slices.Equal(got, want) {
		t.Fatalf("after adding an untried contact: %v, want %v", got, want)
	}
	// A fresh success pushes out the oldest.
	c.RecordSuccess(contact(4, "tcp://192.0.2.4:1"), t0.Add(time.Hour))
	if got, want := ids(c.Contacts(0)), []identity.NodeID{testID(4), testID(3), testID(2)}; !slices.Equal(got, want) {
		t.Fatalf("after a new success: %v, want %v", got, want)
	}
	if got := ids(c.Contacts(2)); len(got) != 2 || got[0] != testID(4) {
		t.Fatalf("Contacts(2) = %v", got)
	}
	// A success resets failures; a failure older than the success is ignored.
	c.RecordSuccess(contact(2, "tcp://192.0.2.2:1"), t0.Add(2*time.Hour))
	c.RecordFailure(testID(2), t0.Add(time.Hour))
	if e := c.Entries()[0]; e.ID != testID(2) || e.Failures != 0 {
		t.Fatalf("best entry %+v, want ID 2 with no failures", e)
	}
}

func TestEndpointMerge(t *testing.T) {
	c := open(t, Config{Dir: t.TempDir(), MaxEndpoints: 3})
	c.Add(contact(1, "tcp://192.0.2.1:1", "tcp://192.0.2.1:2"))
	c.Add(contact(1, "tcp://192.0.2.1:2", "tcp://192.0.2.1:3", "tcp://192.0.2.1:4"))
	want := []transport.Endpoint{ep("tcp://192.0.2.1:1"), ep("tcp://192.0.2.1:2"), ep("tcp://192.0.2.1:3")}
	if got := c.Entries()[0].Endpoints; !slices.Equal(got, want) {
		t.Fatalf("after Add: %v, want %v", got, want)
	}
	// The endpoint that worked goes first; the oldest falls off the end.
	c.RecordSuccess(contact(1, "quic://192.0.2.1:9"), t0)
	want = []transport.Endpoint{ep("quic://192.0.2.1:9"), ep("tcp://192.0.2.1:1"), ep("tcp://192.0.2.1:2")}
	if got := c.Entries()[0].Endpoints; !slices.Equal(got, want) {
		t.Fatalf("after RecordSuccess: %v, want %v", got, want)
	}
	// Nothing to dial, nothing kept; adding what is known changes nothing.
	c.Add(transport.Contact{ID: testID(2)}, contact(0, "tcp://192.0.2.1:1"))
	c.RecordSuccess(transport.Contact{ID: testID(3)}, t0)
	if n := len(c.Entries()); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c.Add(contact(1, "tcp://192.0.2.1:1"))
	if c.Dirty() {
		t.Error("dirty after adding a known endpoint")
	}
}

func TestHardCoded(t *testing.T) {
	dir := t.TempDir()
	hard := []transport.Contact{contact(9, "tcp://203.0.113.9:5483"), contact(8, "tcp://203.0.113.8:5483"), contact(9, "quic://203.0.113.9:5483")}
	c := open(t, Config{Dir: dir, Max: 1, HardCoded: hard})
	c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
	c.RecordSuccess(contact(9, "tcp://192.0.2.99:1"), t0.Add(time.Hour)) // ignored
	c.RecordFailure(testID(8), t0)                                       // ignored
	got := c.Contacts(0)
	if want := []identity.NodeID{testID(9), testID(8), testID(1)}; !slices.Equal(ids(got), want) {
		t.Fatalf("order %v, want %v", ids(got), want)
	}
	if want := []transport.Endpoint{ep("tcp://203.0.113.9:5483"), ep("quic://203.0.113.9:5483")}; !slices.Equal(got[0].Endpoints, want) {
		t.Errorf("merged hard-coded endpoints %v, want %v", got[0].Endpoints, want)
	}
	if got := ids(c.Contacts(1)); !slices.Equal(got, []identity.NodeID{testID(9)}) {
		t.Errorf("Contacts(1) = %v", got)
	}
	got[0].Endpoints[0] = ep("tcp://192.0.2.200:1") // callers get copies
	if c.Contacts(1)[0].Endpoints[0] != ep("tcp://203.0.113.9:5483") {
		t.Error("Contacts returned the cache's own slice")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(testID(9).String())) || bytes.Contains(data, []byte(testID(8).String())) {
		t.Errorf("hard-coded contact saved:\n%s", data)
	}
	if !bytes.Contains(data, []byte(testID(1).String())) {
		t.Errorf("learned contact not saved:\n%s", data)
	}
}

// corruptFiles are whole files that must be set aside.
var corruptFiles = map[string]string{
	"garbage":       "\x00\xffnot json at all",
	"empty":         "",
	"truncated":     `{"version":1,"contacts":[{"id":"` + testID(1).String() + `","endpoints":["tcp://192.0.2.1:1"`,
	"wrong version": `{"version":2,"contacts":[]}`,
	"no version":    `{"contacts":[]}`,
	"null":          `null`,
	"array":         `[]`,
	"trailing":      `{"version":1,"contacts":[]} {}`,
	"contacts type": `{"version":1,"contacts":"none"}`,
}

func TestCorruptFileSetAside(t *testing.T) {
	for name, content := range corruptFiles {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bootstrap.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			hard := contact(9, "tcp://203.0.113.9:5483")
			c := open(t, Config{Dir: dir, HardCoded: []transport.Contact{hard}, Logger: logs.logger(), Now: func() time.Time { return t0 }})
			if got := ids(c.Contacts(0)); !slices.Equal(got, []identity.NodeID{hard.ID}) {
				t.Errorf("contacts %v, want the hard-coded one only", got)
			}
			aside := path + ".corrupt-20250304T050607Z"
			got, err := os.ReadFile(aside)
			if err != nil {
				t.Fatalf("set-aside copy: %v", err)
			}
			if string(got) != content {
				t.Errorf("set-aside copy holds %q, want %q", got, content)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt file still in place: %v", err)
			}
			if !strings.Contains(logs.String(), "corrupt") || !strings.Contains(logs.String(), aside) {
				t.Errorf("log does not report the set-aside file:\n%s", logs.String())
			}
		})
	}
}

func TestCorruptFileNeverOverwritesEarlierCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bootstrap.json")
	now := func() time.Time { return t0 }
	for i := range 3 {
		content := fmt.Sprintf("garbage %d", i)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c := open(t, Config{Dir: dir, Now: now})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i, suffix := range []string{"", ".1", ".2"} {
		got, err := os.ReadFile(path + ".corrupt-20250304T050607Z" + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("garbage %d", i); string(got) != want {
			t.Errorf("copy %d holds %q, want %q", i, got, want)
		}
	}
}

func TestBadEntriesSkipped(t *testing.T) {
	dir := t.TempDir()
	good := testID(1).String()
	file := `{
  "version": 1,
  "future_field": {"x": 1},
  "contacts": [
    {"id": "` + good + `", "endpoints": ["tcp://192.0.2.1:1", "udp://192.0.2.1:2", "tcp://host:3", "quic://192.0.2.1:4"], "last_success": "2025-03-04T05:06:07Z", "failures": 2, "note": "unknown field"},
    {"id": "not-a-node-id", "endpoints": ["tcp://192.0.2.2:1"]},
    {"id": "` + testID(0).String() + `", "endpoints": ["tcp://192.0.2.3:1"]},
    {"id": "` + testID(4).String() + `", "endpoints": ["nonsense"]},
    {"id": "` + testID(5).String() + `", "endpoints": ["tcp://192.0.2.5:1"], "last_success": "yesterday"},
    {"id": "` + testID(6).String() + `", "endpoints": ["tcp://192.0.2.6:1"], "failures": -1},
    {"id": 7},
    42,
    {"id": "` + testID(9).String() + `", "endpoints": ["tcp://192.0.2.9:1"]},
    {"id": "` + testID(8).String() + `", "endpoints": ["tcp://192.0.2.8:1"]}
  ]
}`
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c := open(t, Config{Dir: dir, Logger: logs.logger(), HardCoded: []transport.Contact{contact(9, "tcp://203.0.113.9:1")}})
	entries := c.Entries()
	if got, want := len(entries), 2; got != want {
		t.Fatalf("%d entries, want %d: %+v\n%s", got, want, entries, logs.String())
	}
	e := entries[0]
	if e.ID != testID(1) || e.Failures != 2 || !e.LastSuccess.Equal(t0) {
		t.Errorf("first entry %+v", e)
	}
	if want := []transport.Endpoint{ep("tcp://192.0.2.1:1"), ep("quic://192.0.2.1:4")}; !slices.Equal(e.Endpoints, want) {
		t.Errorf("endpoints %v, want %v", e.Endpoints, want)
	}
	if entries[1].ID != testID(8) || !entries[1].LastSuccess.IsZero() {
		t.Errorf("second entry %+v, want ID 8 that never succeeded", entries[1])
	}
	if n := strings.Count(logs.String(), "skipping bad bootstrap cache entry"); n != 7 {
		t.Errorf("%d bad entries logged, want 7:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "skipping bad endpoint"); n != 3 {
		t.Errorf("%d bad endpoints logged, want 3:\n%s", n, logs.String())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file with bad entries was moved: %v", err)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	first := open(t, Config{Dir: dir})
	_, err := Open(Config{Dir: dir, Logger: quietLogger()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if lock := filepath.Join(dir, "bootstrap.lock"); !strings.Contains(err.Error(), lock) {
		t.Errorf("error %q does not name %s", err, lock)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := open(t, Config{Dir: dir})
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if err := second.Save(); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v, want ErrClosed", err)
	}
}

func TestOpenNeedsDir(t *testing.T) {
	if _, err := Open(Config{}); !errors.Is(err, ErrNoDir) {
		t.Fatalf("Open without a directory: %v, want ErrNoDir", err)
	}
}

// failingWrite makes the temp file read-only, so writing to it fails as a full disk
// would, after the temp file exists.
func failingWrite(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	name := f.Name()
	f.Close()
	return os.Open(name)
}

func TestSaveFailureKeepsOldFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, c *Cache, dir string)
	}{
		{"write fails", func(t *testing.T, c *Cache, dir string) { c.createTemp = failingWrite }},
		{"read-only dir", func(t *testing.T, c *Cache, dir string) {
			if os.Geteuid() == 0 {
				t.Skip("root ignores directory permissions")
			}
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, Config{Dir: dir})
			c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "bootstrap.json")
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, c, dir)
			c.RecordSuccess(contact(2, "tcp://192.0.2.2:1"), t0)
			if err := c.Save(); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Save: %v, want an error naming %s", err, path)
			}
			if !c.Dirty() {
				t.Error("not dirty after a failed save")
			}
			if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
				t.Errorf("old file changed (err %v):\n%s", err, now)
			}
			names, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
			if len(names) != 0 {
				t.Errorf("temp files left behind: %v", names)
			}
		})
	}
}

// FuzzLoad opens a cache on arbitrary file bytes: it never panics, and the file either
// loads and stays in place or is set aside with its bytes intact.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"version":1,"contacts":[{"id":"` + testID(1).String() + `","endpoints":["tcp://192.0.2.1:5483","quic://[2001:db8::1]:5483"],"last_success":"2025-03-04T05:06:07Z","failures":3}]}`))
	f.Add([]byte(`{"version":1,"contacts":[{"id":"x"},1,null,{"id":"` + testID(2).String() + `","endpoints":["tcp://0.0.0.0:1"]}]}`))
	for _, content := range corruptFiles {
		f.Add([]byte(content))
	}
	// One data directory serves every input: a fresh t.TempDir per input (two mkdirs,
	// a new lock file, a RemoveAll) cost more than Open, the checks and Close together.
	// Inputs run one at a time, and each starts with only the lock file there.
	dir := f.TempDir()
	path := filepath.Join(dir, "bootstrap.json")
	aside := path + ".corrupt-20250304T050607Z"
	logger := quietLogger()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{path, aside} {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Open(Config{Dir: dir, Max: 8, Logger: logger, Now: func() time.Time { return t0 }, HardCoded: []transport.Contact{contact(9, "tcp://203.0.113.9:1")}})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer c.Close()
		if got := c.Contacts(0); len(got) == 0 || got[0].ID != testID(9) {
			t.Fatalf("hard-coded contact not first: %v", ids(got))
		}
		if len(c.Entries()) > 8 {
			t.Fatalf("%d entries over the bound", len(c.Entries()))
		}
		if kept, err := os.ReadFile(path); err == nil {
			if !bytes.Equal(kept, data) {
				t.Fatal("file changed by loading")
			}
			return
		}
		setAside, err := os.ReadFile(aside)
		if err != nil {
			t.Fatalf("file neither kept nor set aside: %v", err)
		}
		if !bytes.Equal(setAside, data) {
			t.Fatal("set-aside copy differs from the original")
		}
		if len(c.Entries()) != 0 {
			t.Fatal("entries loaded from a corrupt file")
		}
	})
}
