package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode/utf8"
)

// NodeIDSize is the length of a NodeID in bytes: an ed25519 public key.
const NodeIDSize = ed25519.PublicKeySize

// textEncoding is lowercase base32 without padding: 52 characters, case-insensitive,
// no punctuation, so an ID survives copy-paste, double-click selection and URLs.
var textEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NodeIDTextLen is the length of the text form of a NodeID.
var NodeIDTextLen = textEncoding.EncodedLen(NodeIDSize)

// NodeID names a node: its ed25519 public key. The zero value is no node.
type NodeID [NodeIDSize]byte

// String returns the text form: 52 lowercase base32 characters.
func (id NodeID) String() string { return textEncoding.EncodeToString(id[:]) }

// Short returns the first 8 characters of the text form, for logs.
func (id NodeID) Short() string { return id.String()[:8] }

// IsZero reports whether id is the zero value.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// Compare orders NodeIDs by bytes: -1 if id < other, 0 if equal, +1 if greater. The
// one-connection-per-pair rule keeps the connection initiated by the smaller one.
func (id NodeID) Compare(other NodeID) int { return bytes.Compare(id[:], other[:]) }

// Less reports whether id sorts before other.
func (id NodeID) Less(other NodeID) bool { return id.Compare(other) < 0 }

// PublicKey returns id as an ed25519 public key.
func (id NodeID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(id[:]) }

// MarshalText implements encoding.TextMarshaler with the text form.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what ParseNodeID accepts.
func (id *NodeID) UnmarshalText(b []byte) error {
	parsed, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseNodeID parses the text form of a NodeID. Surrounding white space is ignored and
// upper case is accepted; anything else that is not exactly 52 base32 characters is an
// error that says what is wrong.
func ParseNodeID(s string) (NodeID, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n != NodeIDTextLen {
		return NodeID{}, fmt.Errorf("%w: %d characters, want %d", ErrBadNodeID, n, NodeIDTextLen)
	}
	// Lowered by hand: strings.ToLower would also map non-ASCII look-alikes such as
	// the Kelvin sign U+212A to 'k'.
	text := make([]byte, 0, NodeIDTextLen)
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r >= 'a' && r <= 'z', r >= '2' && r <= '7':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			return NodeID{}, fmt.Errorf("%w: character %q at position %d is not base32 (a-z, 2-7)", ErrBadNodeID, r, pos)
		}
		text = append(text, byte(r))
	}
	var id NodeID
	n, err := textEncoding.Decode(id[:], text)
	if err != nil || n != NodeIDSize {
		return NodeID{}, fmt.Errorf("%w: %v", ErrBadNodeID, err)
	}
	// 52 base32 characters carry 260 bits; the last 4 must be zero for a canonical
	// encoding, so each ID has exactly one text form.
	if id.String() != string(text) {
		return NodeID{}, fmt.Errorf("%w: not the canonical encoding (last character %q)", ErrBadNodeID, s[len(s)-1])
	}
	return id, nil
}

// NodeIDFromBytes converts a 32-byte slice, as carried on the wire, to a NodeID.
func NodeIDFromBytes(b []byte) (NodeID, error) {
	if len(b) != NodeIDSize {
		return NodeID{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadNodeID, len(b), NodeIDSize)
	}
	var id NodeID
	copy(id[:], b)
	return id, nil
}
