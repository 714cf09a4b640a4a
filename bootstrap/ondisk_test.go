package bootstrap

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
)

// The cache file changed by someone else while the cache is open: the next save, or
// Close even with nothing new to save, writes the cache from memory again, after
// setting an unreadable file aside or merging a readable one, so that neither the
// cache nor the other writer's file is lost. Without adoptDiskChanges a Close with no
// change leaves the garbage in place (the next start loses every contact), and a save
// silently replaces the other file.
func TestFileChangedWhileOpen(t *testing.T) {
	const garbage = "\x00\xffoverwritten while the node ran"
	edited := `{"version":1,"contacts":[{"id":"` + testID(3).String() + `","endpoints":["tcp://192.0.2.3:1"]}]}`
	tests := []struct {
		name string
		// change alters the file; then the cache saves (after a change of its own)
		// or only closes.
		change func(t *testing.T, path string)
		save   bool
		want   []identity.NodeID
		// setAside says whether the changed file must be set aside, aside what it
		// then holds.
		setAside  bool
		aside     string
		wantInLog string
	}{
		{"garbage, Close", overwrite(garbage), false, []identity.NodeID{testID(1)}, true, garbage, "set it aside"},
		{"garbage, Save", overwrite(garbage), true, []identity.NodeID{testID(2), testID(1)}, true, garbage, "set it aside"},
		{"emptied, Close", overwrite(""), false, []identity.NodeID{testID(1)}, true, "", "set it aside"},
		{"removed, Close", func(t *testing.T, path string) { os.Remove(path) }, false, []identity.NodeID{testID(1)}, false, "", "removed"},
		{"edited, Close", overwrite(edited), false, []identity.NodeID{testID(1), testID(3)}, false, "", "merged"},
		{"edited, Save", overwrite(edited), true, []identity.NodeID{testID(2), testID(1), testID(3)}, false, "", "merged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DefaultFileName)
			var logs logBuffer
			c := open(t, Config{Dir: dir, Logger: logs.logger(), Now: func() time.Time { return t0 }})
			c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			tt.change(t, path)
			if tt.save {
				c.RecordSuccess(contact(2, "tcp://192.0.2.2:1"), t0.Add(time.Second))
				if err := c.Save(); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			reopened := open(t, Config{Dir: dir, Logger: quietLogger()})
			var got []identity.NodeID
			for _, e := range reopened.Entries() {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("the file holds %v, want %v", got, tt.want)
			}
			aside, _ := filepath.Glob(path + ".corrupt-*")
			switch {
			case !tt.setAside && len(aside) != 0:
				t.Errorf("set aside %v, want nothing", aside)
			case tt.setAside && len(aside) != 1:
				t.Fatalf("set-aside copies %v, want one", aside)
			case tt.setAside:
				if b, err := os.ReadFile(aside[0]); err != nil || string(b) != tt.aside {
					t.Errorf("set-aside copy holds %q (%v), want %q", b, err, tt.aside)
				}
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tt.wantInLog) {
				t.Errorf("no warning saying %q:\n%s", tt.wantInLog, logs.String())
			}
		})
	}
}

// A file nobody touched is not rewritten by Close when the cache did not change.
func TestUnchangedFileNotRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultFileName)
	c := open(t, Config{Dir: dir})
	c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("Close rewrote a file that had not changed")
	}
}

// overwrite returns a change that writes content over the file in place, as an
// editor or a stray program would.
func overwrite(content string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A file changed while the cache is open, then a save that fails (a full disk): the
// cache stays dirty although it learned nothing, so Close writes it.
func TestFileChangedThenSaveFails(t *testing.T) {
	for name, change := range map[string]func(t *testing.T, path string){
		"garbage": overwrite("garbage"),
		"removed": func(t *testing.T, path string) { os.Remove(path) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, Config{Dir: dir})
			c.RecordSuccess(contact(1, "tcp://192.0.2.1:1"), t0)
			if err := c.Save(); err != nil {
				t.Fatal(err)
			}
			change(t, filepath.Join(dir, DefaultFileName))
			c.createTemp = failingWrite
			if err := c.Save(); err == nil {
				t.Fatal("Save with a failing write succeeded")
			}
			if !c.Dirty() {
				t.Error("not dirty after the file changed and the save failed")
			}
			c.createTemp = os.CreateTemp
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if got := open(t, Config{Dir: dir}).Entries(); len(got) != 1 || got[0].ID != testID(1) {
				t.Errorf("the file after Close holds %v, want contact 1", got)
			}
		})
	}
}
