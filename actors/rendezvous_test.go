package actors

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzPunchBody: whatever a peer relays, decoding never panics, and what it accepts
// is within bounds.
func FuzzPunchBody(f *testing.F) {
	good, _ := msgpack.Marshal(punchBody{Kind: punchConnect, ID: 7, Proto: "tcp", Contact: []byte{1, 2, 3}})
	f.Add(good)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x91}, 100))
	f.Add([]byte{0x85, 0xa1, 'k', 0x09})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodePunchBody(b)
		if err != nil {
			return
		}
		if m.Kind < punchConnect || m.Kind > punchRefuse || len(m.Reason) > 256 {
			t.Fatalf("accepted %+v", m)
		}
		if m.Proto != "" && m.Proto != "tcp" && m.Proto != "quic" {
			t.Fatalf("accepted protocol %q", m.Proto)
		}
	})
}

func TestPunchBodyRejects(t *testing.T) {
	for name, v := range map[string]any{
		"kind 0":       punchBody{Kind: 0},
		"kind 9":       punchBody{Kind: 9},
		"bad protocol": punchBody{Kind: punchConnect, Proto: "sctp"},
		"not a map":    []int{1, 2},
	} {
		b, _ := msgpack.Marshal(v)
		if _, err := decodePunchBody(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	long, _ := msgpack.Marshal(punchBody{Kind: punchRefuse, Reason: string(bytes.Repeat([]byte{'x'}, 1000))})
	if m, err := decodePunchBody(long); err != nil || len(m.Reason) != 256 {
		t.Errorf("long reason: %v, %d bytes kept; want it cut to 256", err, len(m.Reason))
	}
}
