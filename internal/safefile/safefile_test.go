package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := Write(path, []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "two" {
		t.Fatalf("file = %q, %v; want two", got, err)
	}
	// A write that fails midway leaves the old file and no temp file.
	boom := errors.New("boom")
	failing := func(dir, pattern string) (*os.File, error) {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		f.Close() // the Write to it fails
		return f, nil
	}
	if err := Write(path, []byte("three"), failing); err == nil {
		t.Fatal("a write to a closed temp file succeeded")
	}
	if got, _ := os.ReadFile(path); string(got) != "two" {
		t.Fatalf("after a failed write the file is %q, want two", got)
	}
	if err := Write(path, []byte("x"), func(string, string) (*os.File, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("createTemp's error: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files left in the directory, want the one", len(entries))
	}
}

func TestSetAsideNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	var names []string
	for _, content := range []string{"bad one", "bad two"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		aside, err := SetAside(path, now)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, aside)
	}
	want := []string{path + ".corrupt-20261205T010203Z", path + ".corrupt-20261205T010203Z.1"}
	for i, name := range names {
		if name != want[i] {
			t.Errorf("set aside as %s, want %s", name, want[i])
		}
	}
	if got, _ := os.ReadFile(names[0]); string(got) != "bad one" {
		t.Errorf("the first file set aside holds %q", got)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the original is still there: %v", err)
	}
}
