package transport

import (
	"bytes"
	"testing"

	"github.com/crust-p2p/crust/transport/identity"
)

// FuzzParsePunchPreamble: the parser never panics, and what it accepts is exactly what
// appendPunchPreamble writes.
func FuzzParsePunchPreamble(f *testing.F) {
	var id identity.NodeID
	for i := range id {
		id[i] = byte(i + 1)
	}
	f.Add(appendPunchPreamble(nil, punchRoleDialer, id))
	f.Add(appendPunchPreamble(nil, punchRoleAcceptor, id))
	f.Add(appendPunchPreamble(nil, 7, id))
	f.Add([]byte(punchMagic))
	f.Add([]byte{0x16, 3, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		role, got, err := parsePunchPreamble(b)
		if err != nil {
			return
		}
		if again := appendPunchPreamble(nil, role, got); !bytes.Equal(again, b) {
			t.Fatalf("parsed %x as role %d, node %x, which is written %x", b, role, got, again)
		}
	})
}
