package bootstrap

import "errors"

// ErrLocked is returned by Open when another process (or another Cache in this one)
// holds the lock on the data directory. The error names the lock file.
var ErrLocked = errors.New("bootstrap cache is locked by another process")

// ErrClosed is returned by Save after Close.
var ErrClosed = errors.New("bootstrap cache is closed")

// ErrNoDir is returned by Open when Config.Dir is empty.
var ErrNoDir = errors.New("bootstrap cache: no data directory configured")
