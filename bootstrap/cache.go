package bootstrap

import (
	"cmp"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Defaults for Config.
const (
	// DefaultMax is the default bound on learned contacts (Crust's).
	DefaultMax = 1500
	// DefaultMaxEndpoints is the default bound on endpoints kept per contact.
	DefaultMaxEndpoints = 16
	// DefaultFileName is the default name of the cache file in the data directory.
	DefaultFileName = "bootstrap.json"
	// LockFileName is the name of the lock file in the data directory.
	LockFileName = "bootstrap.lock"
)

// Config configures a Cache.
type Config struct {
	// Dir is the data directory that holds the cache file and its lock. Required; it
	// is created (mode 0700) if missing.
	Dir string
	// FileName is the name of the cache file in Dir. Default DefaultFileName
	// ("bootstrap.json").
	FileName string
	// Max bounds the learned contacts kept; the worst ranked are dropped beyond it.
	// Hard-coded contacts do not count. Default DefaultMax (1500).
	Max int
	// MaxEndpoints bounds the endpoints kept per contact. Default DefaultMaxEndpoints
	// (16).
	MaxEndpoints int
	// HardCoded are contacts from the configuration. Contacts returns them first, in
	// this order; they are never evicted and never saved. Outcomes recorded for their
	// IDs are ignored. Default none.
	HardCoded []transport.Contact
	// Logger receives warnings about the file (corrupt, bad entries). Default
	// slog.Default().
	Logger *slog.Logger
	// Now names the set-aside copy of a corrupt file; it is not used for ranking.
	// Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return ErrNoDir
	}
	if c.FileName == "" {
		c.FileName = DefaultFileName
	}
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	if c.MaxEndpoints <= 0 {
		c.MaxEndpoints = DefaultMaxEndpoints
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Entry is one learned contact in the cache.
type Entry struct {
	// ID is the node.
	ID identity.NodeID
	// Endpoints are where the node was reached or said it could be, most recently
	// confirmed first, each with its protocol.
	Endpoints []transport.Endpoint
	// LastSuccess is when a direct connection to the node last succeeded; zero if
	// never.
	LastSuccess time.Time
	// Failures counts the failed attempts since the last success.
	Failures int
}

// Contact returns e as a transport.Contact with direct endpoints.
func (e Entry) Contact() transport.Contact {
	return transport.Contact{ID: e.ID, Endpoints: slices.Clone(e.Endpoints)}
}

// compareEntries ranks a before b when it succeeded more recently, then when it failed
// less; the ID breaks ties so the order is stable.
func compareEntries(a, b *Entry) int {
	if c := b.LastSuccess.Compare(a.LastSuccess); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Failures, b.Failures); c != 0 {
		return c
	}
	return a.ID.Compare(b.ID)
}

// Cache is the bootstrap cache: learned contacts in memory, persisted to a locked file
// in the data directory. Create it with Open and release it with Close.
type Cache struct {
	cfg  Config
	path string
	log  *slog.Logger

	// createTemp creates the temp file Save writes; a test replaces it.
	createTemp func(dir, pattern string) (*os.File, error)

	saveMu sync.Mutex // serialises Save so an older snapshot never lands last
	// onDisk is the SHA-256 of the file as this cache last read or wrote it, nil when
	// there was no file: a save that finds something else there adopts it first (see
	// adoptDiskChanges). Guarded by saveMu (Open sets it before c is shared).
	onDisk *[sha256.Size]byte

	mu       sync.Mutex
	hard     []transport.Contact
	hardIDs  map[identity.NodeID]bool
	entries  map[identity.NodeID]*Entry
	gen      uint64 // bumped on every change
	savedGen uint64 // gen of the last successful save or load
	lock     *os.File
	closed   bool
}

// Path returns the path of the cache file.
func (c *Cache) Path() string { return c.path }

// Open locks the data directory, loads the cache file if there is one and returns the
// cache. A second Open on the same directory fails with ErrLocked until Close. A file
// that cannot be parsed is renamed to "<file>.corrupt-<UTC time>" and logged, and the
// cache starts with the hard-coded contacts only; entries with a bad ID or endpoint
// are skipped and logged.
func Open(cfg Config) (*Cache, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg:        cfg,
		path:       filepath.Join(cfg.Dir, cfg.FileName),
		log:        cfg.Logger,
		createTemp: os.CreateTemp,
		hardIDs:    make(map[identity.NodeID]bool),
		entries:    make(map[identity.NodeID]*Entry),
	}
	c.setHardCoded(cfg.HardCoded)
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c.lock = lock
	if err := c.load(); err != nil {
		unlock(lock)
		return nil, err
	}
	return c, nil
}

// setHardCoded keeps the hard-coded contacts in order, merging duplicates of one ID.
func (c *Cache) setHardCoded(contacts []transport.Contact) {
	index := make(map[identity.NodeID]int)
	for _, hc := range contacts {
		if i, ok := index[hc.ID]; ok {
			h := &c.hard[i]
			h.Endpoints = mergeEndpoints(h.Endpoints, hc.Endpoints, len(h.Endpoints)+len(hc.Endpoints))
			h.UPnP = mergeEndpoints(h.UPnP, hc.UPnP, len(h.UPnP)+len(hc.UPnP))
			h.Reflected = mergeEndpoints(h.Reflected, hc.Reflected, len(h.Reflected)+len(hc.Reflected))
			continue
		}
		index[hc.ID] = len(c.hard)
		c.hardIDs[hc.ID] = true
		c.hard = append(c.hard, cloneContact(hc))
	}
}

// dialable returns the endpoints of a contact worth keeping: direct and UPnP ones.
// Reflected endpoints are hole-punch targets that go stale with the NAT mapping.
func dialable(ct transport.Contact) []transport.Endpoint {
	return append(slices.Clone(ct.Endpoints), ct.UPnP...)
}

// mergeEndpoints returns first followed by the endpoints of rest not already in it,
// at most limit in all.
func mergeEndpoints(first, rest []transport.Endpoint, limit int) []transport.Endpoint {
	out := make([]transport.Endpoint, 0, min(limit, len(first)+len(rest)))
	for _, group := range [][]transport.Endpoint{first, rest} {
		for _, ep := range group {
			if len(out) == limit {
				return out
			}
			if !slices.Contains(out, ep) {
				out = append(out, ep)
			}
		}
	}
	return out
}

// learnable reports whether outcomes for id are kept as a learned entry.
func (c *Cache) learnable(id identity.NodeID) bool {
	return !id.IsZero() && !c.hardIDs[id]
}

// RecordSuccess records that a direct connection to contact succeeded at at: its
// direct and UPnP endpoints go first, its failures are reset and it moves up the
// ranking. A contact without such endpoints is not added. Hard-coded IDs are ignored.
func (c *Cache) RecordSuccess(contact transport.Contact, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.learnable(contact.ID) {
		return
	}
	eps := dialable(contact)
	e := c.entries[contact.ID]
	if e == nil {
		if len(eps) == 0 {
			return
		}
		e = &Entry{ID: contact.ID}
		c.entries[contact.ID] = e
	}
	e.Endpoints = mergeEndpoints(eps, e.Endpoints, c.cfg.MaxEndpoints)
	if at.After(e.LastSuccess) {
		e.LastSuccess = at
		e.Failures = 0
	}
	c.gen++
	c.evict()
}

// RecordFailure records that an attempt to reach id failed at at. A failure no later
// than the last success is a stale report and is ignored, as are unknown and
// hard-coded IDs.
func (c *Cache) RecordFailure(id identity.NodeID, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || !at.After(e.LastSuccess) {
		return
	}
	e.Failures++
	c.gen++
}

// Add merges contacts learned by other means (peers, the LAN beacon) into the cache:
// new contacts are added with no success yet, and known ones gain the endpoints they
// lack, up to Config.MaxEndpoints. Contacts without direct or UPnP endpoints, zero
// IDs and hard-coded IDs are ignored.
func (c *Cache) Add(contacts ...transport.Contact) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for _, ct := range contacts {
		if !c.learnable(ct.ID) {
			continue
		}
		eps := dialable(ct)
		if len(eps) == 0 {
			continue
		}
		e := c.entries[ct.ID]
		if e == nil {
			e = &Entry{ID: ct.ID}
			c.entries[ct.ID] = e
		}
		merged := mergeEndpoints(e.Endpoints, eps, c.cfg.MaxEndpoints)
		if !slices.Equal(merged, e.Endpoints) {
			e.Endpoints = merged
			changed = true
		}
	}
	if changed {
		c.gen++
		c.evict()
	}
}

// ranked returns the learned entries best first. The caller holds c.mu.
func (c *Cache) ranked() []*Entry {
	out := make([]*Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// evict drops the worst ranked entries beyond Config.Max. The caller holds c.mu.
func (c *Cache) evict() {
	if len(c.entries) <= c.cfg.Max {
		return
	}
	for _, e := range c.ranked()[c.cfg.Max:] {
		delete(c.entries, e.ID)
	}
}

// Contacts returns up to n contacts to try, best first: the hard-coded contacts, then
// the learned ones by rank. n <= 0 means all of them.
func (c *Cache) Contacts(n int) []transport.Contact {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := len(c.hard) + len(c.entries)
	if n <= 0 || n > total {
		n = total
	}
	out := make([]transport.Contact, 0, n)
	for _, h := range c.hard {
		if len(out) == n {
			return out
		}
		out = append(out, cloneContact(h))
	}
	for _, e := range c.ranked() {
		if len(out) == n {
			break
		}
		out = append(out, e.Contact())
	}
	return out
}

// Entries returns the learned entries, best first, for display. Hard-coded contacts
// are not included.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	ranked := c.ranked()
	out := make([]Entry, len(ranked))
	for i, e := range ranked {
		out[i] = *e
		out[i].Endpoints = slices.Clone(e.Endpoints)
	}
	return out
}

// Dirty reports whether the cache has changed since it was loaded or last saved.
func (c *Cache) Dirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != c.savedGen
}

// Close saves the cache if it changed, or if the file is no longer what the cache
// last wrote (overwritten or removed while the node ran; see Save), and releases the
// lock. It is idempotent; the lock is released even when the save fails, and the save
// error is returned.
func (c *Cache) Close() error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.adoptDiskChanges()
	c.mu.Lock()
	dirty := c.gen != c.savedGen
	c.mu.Unlock()
	var err error
	if dirty {
		err = c.writeLocked()
	}
	c.mu.Lock()
	c.closed = true
	lock := c.lock
	c.lock = nil
	c.mu.Unlock()
	unlock(lock)
	return err
}

func cloneContact(ct transport.Contact) transport.Contact {
	ct.Endpoints = slices.Clone(ct.Endpoints)
	ct.UPnP = slices.Clone(ct.UPnP)
	ct.Reflected = slices.Clone(ct.Reflected)
	return ct
}
