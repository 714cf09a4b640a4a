package bootstrap

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crust-p2p/crust/internal/safefile"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// FileVersion is the version of the file format this package reads and writes.
const FileVersion = 1

// fileFormat is the JSON file: {"version":1,"contacts":[...]}, best first. Unknown
// fields are ignored so that a later version can add some.
type fileFormat struct {
	Version  int               `json:"version"`
	Contacts []json.RawMessage `json:"contacts"`
}

// fileEntry is one contact in the file.
type fileEntry struct {
	ID          string    `json:"id"`
	Endpoints   []string  `json:"endpoints"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Failures    int       `json:"failures"`
}

// lockDir creates dir if needed and takes an exclusive, non-blocking flock on its
// lock file. The lock file is left in place on release: removing it would let two
// processes lock different inodes.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory for the bootstrap cache: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening bootstrap lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held; is another node running with data directory %s? Stop it or use another directory", ErrLocked, path, dir)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// unlock releases the lock taken by lockDir; closing the file drops the flock.
func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// corruptError is a cache file that cannot be read as a whole.
type corruptError struct{ reason error }

func (e *corruptError) Error() string { return e.reason.Error() }
func (e *corruptError) Unwrap() error { return e.reason }

// load reads the cache file into c. A missing file is an empty cache; a corrupt one
// is set aside. It is called by Open before c is shared.
func (c *Cache) load() error {
	data, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading bootstrap cache: %w", err)
	}
	entries, err := c.parse(data)
	var corrupt *corruptError
	if errors.As(err, &corrupt) {
		aside, mvErr := c.moveAside()
		if mvErr != nil {
			return fmt.Errorf("bootstrap cache %s is corrupt (%v) and could not be set aside: %w", c.path, err, mvErr)
		}
		c.log.Warn("bootstrap cache file is corrupt; set it aside and starting with the hard-coded contacts only",
			"file", c.path, "moved_to", aside, "reason", err)
		return nil
	}
	c.merge(entries)
	sum := sha256.Sum256(data)
	c.onDisk = &sum
	return nil
}

// merge adds entries read from the file, keeping the better ranked of two entries
// for one ID.
func (c *Cache) merge(entries []*Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		if old := c.entries[e.ID]; old == nil || compareEntries(e, old) < 0 {
			c.entries[e.ID] = e
		}
	}
	c.evict()
}

// adoptDiskChanges looks at the file before a save replaces it. If it is not what
// this cache last read or wrote (another program, or a person, changed it while the
// node ran), it is not silently overwritten: a readable file's contacts are merged
// into the cache, and an unreadable one is set aside as at Open. Either way the cache
// is then dirty, so that it is written (by this save or, if that fails, by a later
// one or Close) even when it learned nothing new. The caller holds saveMu.
func (c *Cache) adoptDiskChanges() {
	data, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if c.onDisk == nil {
			return
		}
		c.log.Warn("bootstrap cache file was removed while the node ran; writing it again from memory", "file", c.path)
	case err == nil:
		if sum := sha256.Sum256(data); c.onDisk != nil && sum == *c.onDisk {
			return
		}
		entries, perr := c.parse(data)
		if perr == nil {
			c.merge(entries)
			c.log.Warn("bootstrap cache file was changed while the node ran; merged its contacts into the cache before saving",
				"file", c.path, "contacts", len(entries))
			break
		}
		err = perr
		fallthrough
	default:
		// Unreadable or corrupt: keep it, as Open would, and write the cache from memory.
		aside, mvErr := c.moveAside()
		if mvErr != nil {
			c.log.Error("bootstrap cache file was made unreadable while the node ran and could not be set aside; it will be replaced",
				"file", c.path, "reason", err, "err", mvErr)
		} else {
			c.log.Warn("bootstrap cache file was made unreadable while the node ran; set it aside, writing the cache from memory",
				"file", c.path, "moved_to", aside, "reason", err)
		}
	}
	c.onDisk = nil
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// parse decodes the file. It returns a *corruptError when the file as a whole is
// unusable; bad entries are skipped and logged.
func (c *Cache) parse(data []byte) ([]*Entry, error) {
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &corruptError{fmt.Errorf("not valid JSON: %w", err)}
	}
	if f.Version != FileVersion {
		return nil, &corruptError{fmt.Errorf("version %d, want %d", f.Version, FileVersion)}
	}
	var out []*Entry
	for i, raw := range f.Contacts {
		e, err := c.parseEntry(raw)
		if err != nil {
			c.log.Warn("skipping bad bootstrap cache entry", "file", c.path, "index", i, "reason", err)
			continue
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// parseEntry decodes one contact. Bad endpoints are skipped and logged; an entry is
// bad when its ID is, or when none of its endpoints is usable. It returns nil and no
// error for a hard-coded ID, which is not kept as a learned entry.
func (c *Cache) parseEntry(raw json.RawMessage) (*Entry, error) {
	var fe fileEntry
	if err := json.Unmarshal(raw, &fe); err != nil {
		return nil, err
	}
	id, err := identity.ParseNodeID(fe.ID)
	if err != nil {
		return nil, err
	}
	if id.IsZero() {
		return nil, fmt.Errorf("%w: the zero ID", identity.ErrBadNodeID)
	}
	if !c.learnable(id) {
		return nil, nil
	}
	if fe.Failures < 0 {
		return nil, fmt.Errorf("failures %d is negative", fe.Failures)
	}
	e := &Entry{ID: id, LastSuccess: fe.LastSuccess, Failures: fe.Failures}
	for _, s := range fe.Endpoints {
		ep, err := transport.ParseEndpoint(s)
		if err != nil {
			c.log.Warn("skipping bad endpoint in bootstrap cache", "file", c.path, "id", id.Short(), "reason", err)
			continue
		}
		e.Endpoints = mergeEndpoints(e.Endpoints, []transport.Endpoint{ep}, c.cfg.MaxEndpoints)
	}
	if len(e.Endpoints) == 0 {
		return nil, fmt.Errorf("contact %s has no usable endpoint", id.Short())
	}
	return e, nil
}

// moveAside sets the cache file aside as "<file>.corrupt-<UTC time>" (never
// overwritten or deleted). The data directory is locked, so no other process races
// for the name.
func (c *Cache) moveAside() (string, error) { return safefile.SetAside(c.path, c.cfg.Now()) }

// Save writes the learned contacts to the file atomically: a temp file in the same
// directory, fsync, rename over the file, fsync of the directory. On error (a full
// disk, say) the previous file is left intact and the cache stays dirty. A file
// changed by someone else since the cache last read or wrote it is not lost: its
// contacts are merged first, or, if it cannot be read, it is set aside as
// "<file>.corrupt-<UTC time>", with a warning either way.
func (c *Cache) Save() error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	c.adoptDiskChanges()
	return c.writeLocked()
}

// writeLocked writes the cache to the file, with c.saveMu held.
func (c *Cache) writeLocked() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	gen := c.gen
	f := fileFormat{Version: FileVersion, Contacts: []json.RawMessage{}}
	for _, e := range c.ranked() {
		fe := fileEntry{ID: e.ID.String(), Endpoints: make([]string, len(e.Endpoints)), LastSuccess: e.LastSuccess.UTC(), Failures: e.Failures}
		for i, ep := range e.Endpoints {
			fe.Endpoints[i] = ep.String()
		}
		raw, err := json.Marshal(fe)
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("encoding bootstrap cache: %w", err)
		}
		f.Contacts = append(f.Contacts, raw)
	}
	c.mu.Unlock()

	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding bootstrap cache: %w", err)
	}
	data = append(data, '\n')
	if err := c.writeAtomic(data); err != nil {
		return fmt.Errorf("saving bootstrap cache %s: %w", c.path, err)
	}
	sum := sha256.Sum256(data)
	c.onDisk = &sum
	c.mu.Lock()
	c.savedGen = gen
	c.mu.Unlock()
	return nil
}

// writeAtomic replaces c.path with data so that a crash leaves the old or the new
// file, never a mix.
func (c *Cache) writeAtomic(data []byte) error {
	return safefile.Write(c.path, data, c.createTemp)
}
