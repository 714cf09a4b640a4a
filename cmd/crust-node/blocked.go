package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
	"github.com/crust-p2p/crust/internal/safefile"
)

// blockFileName is the file in the data directory that keeps what "crust-node block"
// and "unblock" changed, across restarts.
const blockFileName = "blocked.json"

// blockFileVersion is the version of the file's format.
const blockFileVersion = 1

// blockFileFormat is the file as written: human-readable, one list per kind.
type blockFileFormat struct {
	Version int `json:"version"`
	// Nodes are the blocked NodeIDs.
	Nodes []string `json:"nodes"`
	// Prefixes are the blocked IP prefixes, "192.0.2.0/24".
	Prefixes []string `json:"prefixes"`
}

// blockFile is the daemon's admin.BlockStore: the targets blocked at run time, less
// those unblocked since, saved in blockFileName. At each start they are added to the
// config file's lists; an unblock of a config file entry lasts until the next start.
type blockFile struct {
	path string
	// config are the config file's blacklists, for Unblock's note.
	config map[admin.Target]bool

	mu      sync.Mutex
	targets map[admin.Target]bool
}

var _ admin.BlockStore = (*blockFile)(nil)

// loadBlockFile reads the block file in dataDir (none yet: no targets) and adds its
// targets to scfg's blacklists. A file that cannot be parsed, or has entries that
// cannot, is set aside as "blocked.json.corrupt-<UTC time>" with an error logged, never
// lost: the daemon goes on with the config file's lists and the entries it could read
// (written back at once). Only a file that cannot be read at all fails.
func loadBlockFile(dataDir string, scfg *crust.Config, log *slog.Logger, now time.Time) (*blockFile, error) {
	b := &blockFile{path: filepath.Join(dataDir, blockFileName), config: make(map[admin.Target]bool), targets: make(map[admin.Target]bool)}
	for _, id := range scfg.Blacklist {
		b.config[admin.Target{ID: id}] = true
	}
	for _, p := range scfg.BlacklistPrefixes {
		if t, err := admin.ParseTarget(p.String()); err == nil { // the form Target keeps
			b.config[t] = true
		}
	}
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the block list %s: %w; fix its permissions, or move it away to start without the blocks made at run time", b.path, err)
	}
	bad := b.parse(data)
	if bad != nil {
		aside, err := safefile.SetAside(b.path, now)
		if err != nil {
			return nil, fmt.Errorf("the block list %s is corrupt (%v) and could not be set aside: %w", b.path, bad, err)
		}
		log.Error("the block list file is corrupt; set it aside and going on with the config file's lists and what could be read",
			"file", b.path, "moved_to", aside, "reason", bad, "kept", len(b.targets))
		if len(b.targets) > 0 {
			if err := b.save(); err != nil {
				log.Error("writing the block list back failed; the blocks read hold until the daemon stops", "file", b.path, "err", err)
			}
		}
	}
	for t := range b.targets {
		if t.IsPrefix() {
			scfg.BlacklistPrefixes = append(scfg.BlacklistPrefixes, t.Prefix)
		} else {
			scfg.Blacklist = append(scfg.Blacklist, t.ID)
		}
	}
	return b, nil
}

// parse reads data into b.targets and says what was wrong with it, if anything:
// the whole file (not JSON, another version), or some entries, which are left out.
func (b *blockFile) parse(data []byte) error {
	var f blockFileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if f.Version != blockFileVersion {
		return fmt.Errorf("version %d, want %d", f.Version, blockFileVersion)
	}
	var bad []string
	for _, list := range []struct {
		key    string
		texts  []string
		prefix bool
	}{{"nodes", f.Nodes, false}, {"prefixes", f.Prefixes, true}} {
		for _, s := range list.texts {
			t, err := admin.ParseTarget(s)
			if err == nil && t.IsPrefix() != list.prefix {
				err = fmt.Errorf("%q is not one of the %s", s, list.key)
			}
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			b.targets[t] = true
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d entries left out: %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}

// Block records t and saves the file.
func (b *blockFile) Block(t admin.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.targets[t] {
		return nil
	}
	b.targets[t] = true
	if err := b.save(); err != nil {
		delete(b.targets, t)
		return err
	}
	return nil
}

// Unblock forgets t and saves the file. If the config file blocks t too, the note
// says so: it is blocked again at the next start.
func (b *blockFile) Unblock(t admin.Target) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.targets[t] {
		delete(b.targets, t)
		if err := b.save(); err != nil {
			b.targets[t] = true
			return "", err
		}
	}
	if b.config[t] {
		key := "blacklist"
		if t.IsPrefix() {
			key = "blacklist_prefixes"
		}
		return fmt.Sprintf("%s is also in the config file's %s: it is blocked again at the next start; remove it there to unblock it for good", t, key), nil
	}
	return "", nil
}

// save writes the targets to the file atomically: a temp file (mode 0600) in the same
// directory, fsync, rename over the file, fsync of the directory. On error the
// previous file is left as it was. b.mu is held, or b is not shared yet.
func (b *blockFile) save() (err error) {
	f := blockFileFormat{Version: blockFileVersion, Nodes: []string{}, Prefixes: []string{}}
	for t := range b.targets {
		if t.IsPrefix() {
			f.Prefixes = append(f.Prefixes, t.String())
		} else {
			f.Nodes = append(f.Nodes, t.String())
		}
	}
	slices.Sort(f.Nodes)
	slices.Sort(f.Prefixes)
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the block list: %w", err)
	}
	if err := safefile.Write(b.path, append(data, '\n'), nil); err != nil { // mode 0600
		return fmt.Errorf("saving the block list %s: %w", b.path, err)
	}
	return nil
}
