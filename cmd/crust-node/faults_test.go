package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/internal/testdisk"
)

// The daemon's block list on a full disk: "crust-node block" reports that the block
// holds but could not be saved, naming the cause; blocked.json is left whole, with no
// temp file beside it; the daemon serves on; once there is room, blocking again
// saves. It protects the block file's write-temp-then-rename save: the file starts a
// few bytes short of a page and the new block takes it past, so a save that rewrote
// it in place would truncate it on the full disk, and the next start would set every
// block aside as corrupt.
func TestDaemonBlockFileDiskFull(t *testing.T) {
	dir := testdisk.SmallTmpfs(t, "64k")

	// A block list that fills its page but for a few bytes, and a block that does not
	// fit in it.
	const blockWhenFull = "10.255.0.0/24"
	page := os.Getpagesize()
	var prefixes []string
	for i := 0; ; i++ {
		next := append(slices.Clone(prefixes), fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
		if blockFileSize(t, next) > page {
			break
		}
		prefixes = next
	}
	if blockFileSize(t, append(slices.Clone(prefixes), blockWhenFull)) <= page {
		t.Fatal("the block to make when the disk is full fits in the file's page")
	}
	path := filepath.Join(dir, blockFileName)
	if err := os.WriteFile(path, blockFileBytes(t, prefixes), 0o600); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, loopbackConfig(dir, 0, ""))
	if got := len(d.blocked().Prefixes); got != len(prefixes) {
		t.Fatalf("the daemon started with %d blocked prefixes, want the file's %d", got, len(prefixes))
	}
	filler := testdisk.Fill(t, dir)
	code, stdout, stderr := d.cliResult("block", blockWhenFull)
	if code == 0 || !strings.Contains(stderr, "saving it failed") || !strings.Contains(stderr, "no space left on device") {
		t.Errorf("block on a full disk: exit %d, stdout %q, stderr %q; want a failure saying the save failed and why", code, stdout, stderr)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, saved) {
		t.Errorf("blocked.json changed on a full disk (%v): %d bytes, want %d", err, len(got), len(saved))
	}
	if tmp, _ := filepath.Glob(path + ".tmp-*"); len(tmp) != 0 {
		t.Errorf("temp files left behind: %v", tmp)
	}
	// Running on, with the block in force until it stops.
	if !slices.Contains(d.blocked().Prefixes, blockWhenFull) {
		t.Errorf("%s is not blocked on the running daemon", blockWhenFull)
	}
	if !strings.Contains(d.stderr.String(), "saving a block failed") {
		t.Errorf("the daemon did not log the failed save:\n%s", d.stderr)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d.cli("block", blockWhenFull)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f blockFileFormat
	if err := json.Unmarshal(data, &f); err != nil || !slices.Contains(f.Prefixes, blockWhenFull) || len(f.Prefixes) != len(prefixes)+1 {
		t.Errorf("blocked.json once there is room (%v): %d prefixes, want %d with %s", err, len(f.Prefixes), len(prefixes)+1, blockWhenFull)
	}
	if err := d.stop(); err != nil {
		t.Errorf("the daemon's exit: %v\n%s", err, d.stderr)
	}
}

// blockFileBytes is the block file holding prefixes, as the daemon writes it.
func blockFileBytes(t *testing.T, prefixes []string) []byte {
	t.Helper()
	f := blockFileFormat{Version: blockFileVersion, Nodes: []string{}, Prefixes: slices.Sorted(slices.Values(prefixes))}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(data, '\n')
}

func blockFileSize(t *testing.T, prefixes []string) int { return len(blockFileBytes(t, prefixes)) }
