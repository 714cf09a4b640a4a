// Package safefile writes files so that a crash, a full disk or a concurrent reader
// never sees half a file, and sets unreadable files aside instead of deleting them.
// The bootstrap cache and crust-node's block list share it.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Write replaces path with data atomically: a temp file (mode 0600) in the same
// directory, fsync, rename over path, fsync of the directory. On error the previous
// file is intact and no temp file is left. createTemp makes the temp file (nil:
// os.CreateTemp); tests pass one that fails.
func Write(path string, data []byte, createTemp func(dir, pattern string) (*os.File, error)) (err error) {
	if createTemp == nil {
		createTemp = os.CreateTemp
	}
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SetAside renames path to "<path>.corrupt-<UTC time>", adding a counter if that name
// is taken: the file is never overwritten or deleted. It returns the new name.
func SetAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	aside := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = base + "." + strconv.Itoa(i)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, SyncDir(filepath.Dir(path))
}

// SyncDir makes a rename in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
