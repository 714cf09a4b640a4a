package crust_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/bootstrap"
	"github.com/crust-p2p/crust/internal/testdisk"
)

// cacheFileIDs reads a bootstrap cache file as a program reading it later would: an
// error if it is not a valid cache file, else the IDs of its contacts.
func cacheFileIDs(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Version  int `json:"version"`
		Contacts []struct {
			ID string `json:"id"`
		} `json:"contacts"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != bootstrap.FileVersion {
		return nil, errors.New("wrong version")
	}
	var ids []string
	for _, c := range f.Contacts {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// waitCacheFile waits until the cache file at path is valid and lists every node of
// want.
func waitCacheFile(t *testing.T, path string, want ...*testNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, err := cacheFileIDs(path)
		missing := 0
		for _, n := range want {
			if !slices.Contains(ids, n.ID().String()) {
				missing++
			}
		}
		if err == nil && missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache file %s: %v, %d of %d nodes missing", path, err, missing, len(want))
		}
		time.Sleep(10 * time.Millisecond) // the node saves a second after a change
	}
}

const garbage = "\x00\xff{\"version\":1,\"contacts\":[ overwritten"

// The bootstrap file overwritten with garbage while the node runs: the node goes on
// serving, its next save writes a valid file from its cache in memory (setting the
// garbage aside, never losing a file), and so does Close with nothing new to save.
// A restart on a garbage file warns, sets it aside and starts with an empty cache.
// It protects the cache's in-memory copy as the truth while running, and Close's
// check of the file: without it a node that learned nothing after the damage stops
// with the garbage in place, and its next start has lost every contact.
func TestBootstrapFileCorruptedWhileRunning(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, bootstrap.DefaultFileName)
	cfg := fastConfig()
	cfg.DataDir = dir
	a := newNode(t, cfg, nil)
	b, c := newNode(t, fastConfig(), nil), newNode(t, fastConfig(), nil)
	connect(t, a, b)
	waitCacheFile(t, path, b)

	if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
		t.Fatal(err)
	}
	exchange(t, a, b) // running on
	connect(t, a, c)  // a change: the next save
	waitCacheFile(t, path, b, c)
	a.waitLog("set it aside", 5*time.Second)
	checkSetAside(t, path, 1)

	if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
		t.Fatal(err)
	}
	exchange(t, a, c)
	a.Close() // nothing learned since the last save
	if ids, err := cacheFileIDs(path); err != nil || len(ids) != 2 {
		t.Fatalf("after Close the cache file holds %v (%v), want B and C: the cache was lost", ids, err)
	}
	checkSetAside(t, path, 2)

	// A restart on a corrupt file.
	if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
		t.Fatal(err)
	}
	a2 := newNode(t, cfg, nil)
	if !strings.Contains(a2.logs.String(), "level=WARN") || !strings.Contains(a2.logs.String(), "corrupt") {
		t.Errorf("no warning about the corrupt file at start:\n%s", a2.logs.String())
	}
	checkSetAside(t, path, 3)
	if got := a2.BootstrapEntries(); len(got) != 0 {
		t.Errorf("started with %d cache entries from a corrupt file", len(got))
	}
	connect(t, a2, b)
	b.waitConnected(a2.ID(), 2) // B's second session with this NodeID
	exchange(t, a2, b)
}

// checkSetAside checks that want copies of the garbage were set aside beside path.
func checkSetAside(t *testing.T, path string, want int) {
	t.Helper()
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != want {
		t.Fatalf("set-aside copies %v, want %d", aside, want)
	}
	for _, name := range aside {
		if got, err := os.ReadFile(name); err != nil || string(got) != garbage {
			t.Errorf("%s holds %q (%v), want the garbage", name, got, err)
		}
	}
}

// The bootstrap file on a full disk: the save fails with a logged error naming the
// file and the cause, the previous file is left whole (saves write a temp file and
// rename it), no temp file is left behind, and the node serves on; once there is
// room the next save writes every contact. A save at Close on a full disk fails the
// same way, logged as an error. It protects the write-temp-then-rename save: the
// contacts learned while the disk is full make the file need one page more than it
// has, so a save that rewrote the file in place would truncate it, and the next start
// would find it corrupt.
func TestBootstrapSaveDiskFull(t *testing.T) {
	checkLeaks(t)
	dir := testdisk.SmallTmpfs(t, "64k")
	path := filepath.Join(dir, bootstrap.DefaultFileName)
	cfg := fastConfig()
	cfg.BootstrapFile = path // no DataDir: the cache and its lock live on the small disk
	a := newNode(t, cfg, nil)
	b := newNode(t, fastConfig(), nil)
	connect(t, a, b)
	waitCacheFile(t, path, b)
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	firstSize := len(saved)
	filler := testdisk.Fill(t, dir)
	// Enough new contacts to take the file past its page; tmpfs counts whole pages.
	const emptyFile = len("{\n  \"version\": 1,\n  \"contacts\": []\n}\n")
	perContact := len(saved) - emptyFile
	more := (os.Getpagesize()-len(saved))/perContact + 2
	learned := []*testNode{b}
	for range more {
		c := newNode(t, fastConfig(), nil)
		connect(t, a, c) // a change: a save, which fails
		learned = append(learned, c)
	}
	a.waitLog("no space left on device", 10*time.Second)
	if !strings.Contains(a.logs.String(), "saving the cache failed") || !strings.Contains(a.logs.String(), path) {
		t.Errorf("the failed save's log does not say what failed:\n%s", a.logs.String())
	}
	checkIntact(t, path, saved)
	exchange(t, a, b)
	exchange(t, a, learned[more])

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d := newNode(t, fastConfig(), nil)
	connect(t, a, d) // the failed save's retry, or this change, saves with room
	learned = append(learned, d)
	waitCacheFile(t, path, learned...)
	if saved, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	t.Logf("the file: %d bytes with B; %d contacts learned on the full disk; %d bytes once saved with room",
		firstSize, more, len(saved))

	testdisk.Fill(t, dir)
	e := newNode(t, fastConfig(), nil)
	connect(t, a, e)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(a.BootstrapEntries(), func(en crust.BootstrapEntry) bool { return en.ID == e.ID() }) {
		if time.Now().After(deadline) {
			t.Fatal("E never reached the cache")
		}
		time.Sleep(time.Millisecond) // polling the cache
	}
	err = a.Service.Close() // saves what E added: the disk is full
	a.Close()
	if err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Close on a full disk returned %v, want the failed save", err)
	}
	if !strings.Contains(a.logs.String(), "level=ERROR") || !strings.Contains(a.logs.String(), "saving the bootstrap cache failed") {
		t.Errorf("the failed save at Close was not logged as an error:\n%s", a.logs.String())
	}
	checkIntact(t, path, saved)
}

// A save that fails on a full disk is retried on a timer, with nothing else
// changing: once there is room the file is saved, and the log says so. The retries
// back off (SaveDelay, 1 s, then 2 s, ...), each failure is logged once, and a change
// while they wait does not bring the next one forward. It protects the retry: without
// it, a node that learned its peers while the disk was full keeps them only in
// memory until something else changes or it closes, and a crash loses them.
func TestBootstrapSaveRetriedAfterDiskFull(t *testing.T) {
	checkLeaks(t)
	dir := testdisk.SmallTmpfs(t, "64k")
	path := filepath.Join(dir, bootstrap.DefaultFileName)
	cfg := fastConfig()
	cfg.BootstrapFile = path
	a := newNode(t, cfg, nil)
	b, c, d := newNode(t, fastConfig(), nil), newNode(t, fastConfig(), nil), newNode(t, fastConfig(), nil)
	connect(t, a, b)
	waitCacheFile(t, path, b)
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	filler := testdisk.Fill(t, dir)
	connect(t, a, c) // a change: its save fails
	a.waitLog("no space left on device", 10*time.Second)
	connect(t, a, d) // a change while the retry waits
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(a.logs.String(), "saving the cache failed") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second failed save:\n%s", a.logs.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the log
	}
	checkIntact(t, path, saved)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitCacheFile(t, path, b, c, d) // no change since D: the retry saves
	a.waitLog("saving the cache works again", 5*time.Second)

	// Two failures, or more if this test was slow to free the space.
	failures := saveFailures(t, a.logs.String())
	if len(failures) < 2 {
		t.Fatalf("%d failed saves logged with their retry, want 2 or more:\n%s", len(failures), a.logs.String())
	}
	for i, f := range failures {
		if want := time.Second << i; f.retryIn != want {
			t.Errorf("failure %d: retry in %v, want %v", i+1, f.retryIn, want)
		}
		if i > 0 {
			// Log times are in milliseconds: allow for the truncation.
			if gap := f.at.Sub(failures[i-1].at); gap < failures[i-1].retryIn-time.Millisecond {
				t.Errorf("failure %d came %v after failure %d, before its retry was due (%v)", i+1, gap, i, failures[i-1].retryIn)
			}
		}
	}
	if again := fmt.Sprintf(`level=INFO msg="bootstrap: saving the cache works again" file=%s failed_saves=%d`, path, len(failures)); !strings.Contains(a.logs.String(), again) {
		t.Errorf("no %q in the log:\n%s", again, a.logs.String())
	}
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the file: %d bytes with B; %d once the retry saved B, C and D; the failed saves logged %v apart",
		len(saved), len(now), failures[1].at.Sub(failures[0].at))
}

// saveFailure is one logged failed save of the bootstrap cache: when, and when the
// retry is due.
type saveFailure struct {
	at      time.Time
	retryIn time.Duration
}

// saveFailureLine matches a failed save's log line, as slog's text handler writes it.
var saveFailureLine = regexp.MustCompile(`time=(\S+) level=WARN msg="bootstrap: saving the cache failed; retrying" .* in=(\S+) failed_saves=\d+`)

// saveFailures returns the failed saves logged in logs, in order.
func saveFailures(t *testing.T, logs string) []saveFailure {
	t.Helper()
	var out []saveFailure
	for _, m := range saveFailureLine.FindAllStringSubmatch(logs, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("log time %q: %v", m[1], err)
		}
		in, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("log retry delay %q: %v", m[2], err)
		}
		out = append(out, saveFailure{at, in})
	}
	return out
}

// checkIntact checks that the file at path still holds want, and that no temp file
// of a failed save is left beside it.
func checkIntact(t *testing.T, path string, want []byte) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the previous file changed (%v): %d bytes, want %d", err, len(got), len(want))
	}
	if tmp, _ := filepath.Glob(path + ".tmp-*"); len(tmp) != 0 {
		t.Errorf("temp files left behind: %v", tmp)
	}
}
