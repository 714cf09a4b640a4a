package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFileName is the name of the node key file inside the data directory.
const KeyFileName = "node.key"

const pemType = "CRUST ED25519 PRIVATE KEY"

// Identity is a node's key pair.
type Identity struct {
	key ed25519.PrivateKey
	id  NodeID
}

// Generate makes a new random identity.
func Generate() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating node key: %w", err)
	}
	return FromKey(key), nil
}

// FromKey wraps an existing ed25519 private key.
func FromKey(key ed25519.PrivateKey) *Identity {
	var id NodeID
	copy(id[:], key.Public().(ed25519.PublicKey))
	return &Identity{key: key, id: id}
}

// ID returns the NodeID: the public key.
func (i *Identity) ID() NodeID { return i.id }

// PrivateKey returns the private key.
func (i *Identity) PrivateKey() ed25519.PrivateKey { return i.key }

// LoadOrCreate reads the node key from dir/node.key, or creates it (mode 0600, dir 0700)
// if there is none, so a node keeps its NodeID across restarts. A key file that exists
// but is unreadable, malformed or readable by others is an error: replacing it would
// change the node's identity, and a world-readable key is no longer secret.
func LoadOrCreate(dir string) (*Identity, error) {
	path := filepath.Join(dir, KeyFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return parseKeyFile(path, b)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading node key %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir %s: %w", dir, err)
	}
	ident, err := Generate()
	if err != nil {
		return nil, err
	}
	block := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: ident.key.Seed()})
	// Written to a temporary file (mode 0600), then linked into place: the key appears
	// whole or not at all, so a process starting at the same time never reads half a
	// file, and if another process linked its key first, we use theirs.
	tmp, err := os.CreateTemp(dir, KeyFileName+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating node key in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(block); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing node key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("syncing node key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("closing node key %s: %w", tmp.Name(), err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		// Read once rather than start over: a dangling symlink named node.key is not
		// there for ReadFile yet exists for Link, and starting over would never end.
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading node key %s: %w", path, err)
		}
		return parseKeyFile(path, b)
	}
	if err != nil {
		return nil, fmt.Errorf("creating node key %s: %w", path, err)
	}
	return ident, nil
}

func parseKeyFile(path string, b []byte) (*Identity, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading node key %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; it must be readable by its owner only (chmod 600)", ErrBadKeyFile, path, st.Mode().Perm())
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("%w: %s is not a PEM block of type %q; move it aside to create a new identity", ErrBadKeyFile, path, pemType)
	}
	if len(block.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s holds %d key bytes, want %d", ErrBadKeyFile, path, len(block.Bytes), ed25519.SeedSize)
	}
	return FromKey(ed25519.NewKeyFromSeed(block.Bytes)), nil
}
