package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
)

// cliResult runs a crust-node subcommand against d and returns its exit code and
// output, for commands expected to fail.
func (d *daemonProc) cliResult(args ...string) (code int, stdout, stderr string) {
	d.t.Helper()
	args = append([]string{args[0], "--admin", d.admin}, args[1:]...)
	var out, errOut bytes.Buffer
	code = run(args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (d *daemonProc) blocked() admin.Blocked {
	d.t.Helper()
	var b admin.Blocked
	if err := json.Unmarshal([]byte(d.cli("blocked", "--json")), &b); err != nil {
		d.t.Fatalf("blocked --json: %v", err)
	}
	return b
}

// waitNoPeer polls `crust-node peers --json` until id is not among the peers.
func (d *daemonProc) waitNoPeer(id string) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(d.peers(), func(p admin.Peer) bool { return p.ID == id }) {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: still connected to %s\n%s", d.id[:8], id[:8], d.stderr)
		}
		time.Sleep(50 * time.Millisecond) // each poll is a process start and an admin round trip
	}
}

func contactOf(t *testing.T, d *daemonProc) string {
	t.Helper()
	var self admin.Self
	if err := json.Unmarshal([]byte(d.cli("self", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	return self.Contact
}

// A peer blocked with the CLI is disconnected and refused; the blocks survive a
// restart, merged with the config file's; an unblock is saved too.
func TestDaemonBlockPersists(t *testing.T) {
	b := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""))
	dirA := t.TempDir()
	configA := loopbackConfig(dirA, 0, `blacklist_prefixes = ["198.51.100.0/24"]`)
	a := startDaemon(t, configA)
	if out := a.cli("connect", contactOf(t, b)); !strings.Contains(out, "connected "+b.id) {
		t.Fatalf("connect printed %q", out)
	}

	if out := a.cli("block", b.id); out != "blocked "+b.id+"\n" {
		t.Fatalf("block printed %q", out)
	}
	a.waitNoPeer(b.id)
	if out := a.cli("block", "192.0.2.7"); out != "blocked 192.0.2.7/32\n" {
		t.Fatalf("block of an address printed %q", out)
	}
	if out := a.cli("block", b.id); !strings.Contains(out, "blocked already") {
		t.Errorf("a second block printed %q", out)
	}
	if code, _, stderr := b.cliResult("connect", contactOf(t, a)); code != 1 || !strings.Contains(stderr, "blocked") {
		t.Fatalf("the blocked peer connecting: exit %d, %q; want exit 1 and a refusal saying blocked", code, stderr)
	}
	want := admin.Blocked{IDs: []string{b.id}, Prefixes: []string{"192.0.2.7/32", "198.51.100.0/24"}, Whitelist: []string{}}
	if got := a.blocked(); !equalBlocked(got, want) {
		t.Fatalf("blocked = %+v, want %+v", got, want)
	}
	if out := a.cli("blocked"); !strings.Contains(out, "node    "+b.id) || !strings.Contains(out, "prefix  198.51.100.0/24") ||
		!strings.Contains(out, "1 node(s), 2 prefix(es) blocked") {
		t.Errorf("blocked table:\n%s", out)
	}

	file := filepath.Join(dirA, blockFileName)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no block file after blocking: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("block file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := a.stop(); err != nil {
		t.Fatalf("A exited with %v:\n%s", err, a.stderr)
	}

	a = startDaemon(t, configA)
	if got := a.blocked(); !equalBlocked(got, want) {
		t.Fatalf("after a restart, blocked = %+v, want %+v", got, want)
	}
	if code, _, stderr := b.cliResult("connect", contactOf(t, a)); code != 1 || !strings.Contains(stderr, "blocked") {
		t.Fatalf("the blocked peer connecting after the restart: exit %d, %q; want a refusal saying blocked", code, stderr)
	}
	if out := a.cli("unblock", b.id); out != "unblocked "+b.id+"\n" {
		t.Errorf("unblock printed %q", out)
	}
	if out := a.cli("unblock", "198.51.100.0/24"); !strings.Contains(out, "note: 198.51.100.0/24 is also in the config file's blacklist_prefixes") {
		t.Errorf("unblock of a config file entry printed %q, want a note", out)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("A exited with %v:\n%s", err, a.stderr)
	}

	a = startDaemon(t, configA)
	want = admin.Blocked{IDs: []string{}, Prefixes: []string{"192.0.2.7/32", "198.51.100.0/24"}, Whitelist: []string{}}
	if got := a.blocked(); !equalBlocked(got, want) {
		t.Fatalf("after unblocking and a restart, blocked = %+v, want %+v", got, want)
	}
	if out := a.cli("connect", contactOf(t, b)); !strings.Contains(out, "connected "+b.id) {
		t.Fatalf("connect after the unblock printed %q", out)
	}
}

func equalBlocked(a, b admin.Blocked) bool {
	return slices.Equal(a.IDs, b.IDs) && slices.Equal(a.Prefixes, b.Prefixes) && slices.Equal(a.Whitelist, b.Whitelist)
}

// A corrupt block file is set aside, not lost, with an error logged; the daemon runs
// on the config file's lists and saves new blocks to a fresh file.
func TestDaemonCorruptBlockFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, blockFileName)
	corrupt := []byte(`{"version":1,"nodes":["` + strings.Repeat("a", 52)) // cut off
	if err := os.WriteFile(file, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, loopbackConfig(dir, 0, `blacklist_prefixes = ["203.0.113.0/24"]`))
	if log := d.stderr.String(); !strings.Contains(log, "block list file is corrupt") || !strings.Contains(log, "not valid JSON") {
		t.Errorf("no clear error logged for the corrupt file:\n%s", log)
	}
	aside, _ := filepath.Glob(file + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("set-aside copies: %v, want one", aside)
	}
	if got, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(got, corrupt) {
		t.Fatalf("set-aside copy holds %q (%v), want the original", got, err)
	}
	want := admin.Blocked{IDs: []string{}, Prefixes: []string{"203.0.113.0/24"}, Whitelist: []string{}}
	if got := d.blocked(); !equalBlocked(got, want) {
		t.Fatalf("blocked = %+v, want the config file's %+v", got, want)
	}
	d.cli("block", "2001:db8::/32")
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), `"2001:db8::/32"`) {
		t.Fatalf("the fresh block file holds %q (%v)", data, err)
	}
}

func TestCLIBlockBadInput(t *testing.T) {
	d := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"block", "nobody"}, 1, `"nobody" is neither a NodeID`},
		{[]string{"block", "10.1.2.3/8"}, 1, "did you mean 10.0.0.0/8 (the network) or 10.1.2.3/32 (the one address)?"},
		{[]string{"unblock", "10.0.0.0/8"}, 1, "10.0.0.0/8 is not blocked"},
		{[]string{"block", d.id}, 1, "own NodeID"},
		{[]string{"block"}, 2, "want 1 argument(s) (ID|PREFIX), got 0"},
	} {
		code, _, stderr := d.cliResult(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("crust-node %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// loadBlockFile: what a file holds is added to the config's lists; a file with bad
// entries keeps the good ones, is set aside and written back.
func TestLoadBlockFile(t *testing.T) {
	var id1, id2 crust.NodeID
	id1[0], id2[0] = 1, 2
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name       string
		file       string // "" for no file
		wantIDs    []crust.NodeID
		wantPrefix []netip.Prefix
		setAside   bool
		kept       int // entries in the file after loading; -1: no file
	}{
		{name: "no file", wantIDs: []crust.NodeID{id1}, kept: -1},
		{name: "good file",
			file:       `{"version":1,"nodes":["` + id2.String() + `"],"prefixes":["192.0.2.0/24","2001:db8::/32"]}`,
			wantIDs:    []crust.NodeID{id1, id2},
			wantPrefix: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
			kept:       3},
		{name: "bad entries",
			file:       `{"version":1,"nodes":["` + id2.String() + `","192.0.2.1"],"prefixes":["192.0.2.0/24","x/8","` + id1.String() + `"]}`,
			wantIDs:    []crust.NodeID{id1, id2},
			wantPrefix: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			setAside:   true, kept: 2},
		{name: "other version", file: `{"version":2,"nodes":["` + id2.String() + `"]}`, wantIDs: []crust.NodeID{id1}, setAside: true, kept: -1},
		{name: "not JSON", file: "\x00\x01", wantIDs: []crust.NodeID{id1}, setAside: true, kept: -1},
		{name: "empty", file: " ", wantIDs: []crust.NodeID{id1}, setAside: true, kept: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, blockFileName)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			scfg := crust.Config{Blacklist: []crust.NodeID{id1}}
			if _, err := loadBlockFile(dir, &scfg, quiet, now); err != nil {
				t.Fatalf("loadBlockFile: %v", err)
			}
			slices.SortFunc(scfg.Blacklist, crust.NodeID.Compare)
			if !slices.Equal(scfg.Blacklist, tc.wantIDs) {
				t.Errorf("Blacklist = %v, want %v", scfg.Blacklist, tc.wantIDs)
			}
			slices.SortFunc(scfg.BlacklistPrefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
			if !slices.Equal(scfg.BlacklistPrefixes, tc.wantPrefix) {
				t.Errorf("BlacklistPrefixes = %v, want %v", scfg.BlacklistPrefixes, tc.wantPrefix)
			}
			asidePath := path + ".corrupt-20260102T030405Z"
			got, err := os.ReadFile(asidePath)
			switch {
			case tc.setAside && (err != nil || string(got) != tc.file):
				t.Errorf("set-aside copy holds %q (%v), want the original", got, err)
			case !tc.setAside && err == nil:
				t.Errorf("a good file was set aside")
			}
			// What was kept is in the file again; with nothing kept there is none.
			data, err := os.ReadFile(path)
			if tc.kept < 0 {
				if err == nil {
					t.Errorf("a block file is there after loading: %q", data)
				}
				return
			}
			b := blockFile{targets: make(map[admin.Target]bool)}
			if err != nil || b.parse(data) != nil || len(b.targets) != tc.kept {
				t.Errorf("the block file after loading holds %q (%v), want the %d entries kept", data, err, tc.kept)
			}
		})
	}
}

// Block and Unblock save the file; Unblock of a config file entry returns a note.
func TestBlockFileStore(t *testing.T) {
	dir := t.TempDir()
	cfgPrefix := netip.MustParsePrefix("198.51.100.0/24")
	scfg := crust.Config{BlacklistPrefixes: []netip.Prefix{cfgPrefix}}
	b, err := loadBlockFile(dir, &scfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var id crust.NodeID
	id[0] = 9
	target := admin.Target{Prefix: netip.MustParsePrefix("192.0.2.0/24")}
	for _, tgt := range []admin.Target{{ID: id}, target} {
		if err := b.Block(tgt); err != nil {
			t.Fatalf("Block(%s): %v", tgt, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, blockFileName))
	wantFile := "{\n  \"version\": 1,\n  \"nodes\": [\n    \"" + id.String() + "\"\n  ],\n  \"prefixes\": [\n    \"192.0.2.0/24\"\n  ]\n}\n"
	if string(data) != wantFile {
		t.Errorf("block file:\n%s\nwant\n%s", data, wantFile)
	}
	if note, err := b.Unblock(target); err != nil || note != "" {
		t.Errorf("Unblock(%s) = %q, %v; want no note", target, note, err)
	}
	if note, err := b.Unblock(admin.Target{Prefix: cfgPrefix}); err != nil || !strings.Contains(note, "blocked again at the next start") {
		t.Errorf("Unblock of the config file's prefix = %q, %v; want a note", note, err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, blockFileName))
	if strings.Contains(string(data), "192.0.2.0/24") || !strings.Contains(string(data), id.String()) {
		t.Errorf("block file after Unblock:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, blockFileName+".tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	// A save that fails (the directory is gone) is an error, and changes nothing.
	gone := filepath.Join(t.TempDir(), "gone")
	b.path = filepath.Join(gone, blockFileName)
	if err := b.Block(target); err == nil {
		t.Error("Block with the data directory gone: no error")
	}
	if b.targets[target] {
		t.Error("a Block that was not saved was kept")
	}
}
