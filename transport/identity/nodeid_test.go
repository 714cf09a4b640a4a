package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Text forms pinned for fixed bytes: a change here changes every node's address.
const (
	countingText = "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq" // bytes 0x00..0x1f
	allOnesText  = "777777777777777777777777777777777777777777777777777q" // bytes 0xff...
)

var zeroText = strings.Repeat("a", 52)

func countingID() NodeID {
	var id NodeID
	for i := range id {
		id[i] = byte(i)
	}
	return id
}

func allOnesID() NodeID {
	var id NodeID
	for i := range id {
		id[i] = 0xff
	}
	return id
}

func TestNodeIDString(t *testing.T) {
	tests := []struct {
		id   NodeID
		text string
	}{
		{NodeID{}, zeroText},
		{countingID(), countingText},
		{allOnesID(), allOnesText},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.text {
			t.Errorf("String() = %q, want %q", got, tt.text)
		}
		if got := tt.id.Short(); got != tt.text[:8] {
			t.Errorf("Short() = %q, want %q", got, tt.text[:8])
		}
	}
	if NodeIDTextLen != 52 {
		t.Errorf("NodeIDTextLen = %d, want 52", NodeIDTextLen)
	}
}

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    NodeID
		wantMsg string // substring of the error; empty: must parse
	}{
		{"canonical", countingText, countingID(), ""},
		{"zero", zeroText, NodeID{}, ""},
		{"all ones", allOnesText, allOnesID(), ""},
		{"upper case", strings.ToUpper(countingText), countingID(), ""},
		{"mixed case", "AaAqEaYeAuDaOcAjBiFqYdIoB4iBcEqTcQkRmFyYdEnBwHa5DyPq", countingID(), ""},
		{"surrounding white space", " \t" + countingText + "\r\n", countingID(), ""},

		{"empty", "", NodeID{}, "0 characters, want 52"},
		{"only white space", "  \n", NodeID{}, "0 characters, want 52"},
		{"one short", countingText[:51], NodeID{}, "51 characters, want 52"},
		{"one long", countingText + "a", NodeID{}, "53 characters, want 52"},
		{"raw bytes as hex", strings.Repeat("00", 32), NodeID{}, "64 characters, want 52"},
		{"with padding", countingText[:48] + "====", NodeID{}, "character '=' at position 49"},
		{"digit 0", "0" + countingText[1:], NodeID{}, "character '0' at position 1"},
		{"digit 1", countingText[:10] + "1" + countingText[11:], NodeID{}, "character '1' at position 11"},
		{"digit 8", countingText[:51] + "8", NodeID{}, "character '8' at position 52"},
		{"interior space", countingText[:20] + " " + countingText[21:], NodeID{}, "character ' ' at position 21"},
		{"dash", countingText[:5] + "-" + countingText[6:], NodeID{}, "character '-' at position 6"},
		// A multi-byte character counts as one character, and is reported as such.
		{"accented letter", "é" + countingText[1:], NodeID{}, "character 'é' at position 1"},
		// Unicode case folding maps the Kelvin sign to 'k'; an ID must not have such
		// look-alike spellings.
		{"Kelvin sign", countingText[:3] + "\u212a" + countingText[4:], NodeID{}, "character '\u212a' at position 4"},
		{"invalid UTF-8", "\xff" + countingText[1:], NodeID{}, "at position 1"},
		// The last character carries one bit and four zero bits: only a and q are
		// canonical there.
		{"non-canonical last character", countingText[:51] + "r", NodeID{}, "not the canonical encoding (last character 'r')"},
		{"non-canonical last character upper", strings.ToUpper(countingText[:51]) + "B", NodeID{}, "not the canonical encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNodeID(tt.in)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ParseNodeID(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Fatalf("ParseNodeID(%q) = %s, want %s", tt.in, got, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadNodeID) {
				t.Fatalf("ParseNodeID(%q) = %s, %v; want ErrBadNodeID", tt.in, got, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ParseNodeID(%q) error %q does not say %q", tt.in, err, tt.wantMsg)
			}
			if got != (NodeID{}) {
				t.Fatalf("ParseNodeID(%q) returned %s with its error", tt.in, got)
			}
		})
	}
}

func TestNodeIDRoundTrip(t *testing.T) {
	for range 100 {
		ident, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		id := ident.ID()
		got, err := ParseNodeID(id.String())
		if err != nil || got != id {
			t.Fatalf("ParseNodeID(%s) = %s, %v", id, got, err)
		}
		if !bytes.Equal(id.PublicKey(), ident.PrivateKey().Public().(ed25519.PublicKey)) {
			t.Fatalf("PublicKey() of %s is not the key's public half", id)
		}
	}
}

func TestNodeIDText(t *testing.T) {
	id := countingID()
	text, err := id.MarshalText()
	if err != nil || string(text) != countingText {
		t.Fatalf("MarshalText = %q, %v; want %q", text, err, countingText)
	}
	var back NodeID
	if err := back.UnmarshalText([]byte(strings.ToUpper(countingText))); err != nil || back != id {
		t.Fatalf("UnmarshalText = %s, %v; want %s", back, err, id)
	}
	keep := allOnesID()
	if err := keep.UnmarshalText([]byte("nonsense")); !errors.Is(err, ErrBadNodeID) {
		t.Fatalf("UnmarshalText(nonsense) = %v, want ErrBadNodeID", err)
	}
	if keep != allOnesID() {
		t.Fatalf("a failed UnmarshalText changed the NodeID to %s", keep)
	}

	// As a TextMarshaler, a NodeID is a JSON string and a JSON map key.
	type contact struct {
		ID    NodeID
		Seen  map[NodeID]int
		Maybe *NodeID
	}
	in := contact{ID: id, Seen: map[NodeID]int{allOnesID(): 2}}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ID":"` + countingText + `","Seen":{"` + allOnesText + `":2},"Maybe":null}`
	if string(js) != want {
		t.Fatalf("JSON = %s, want %s", js, want)
	}
	var out contact
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Seen[allOnesID()] != 2 || out.Maybe != nil {
		t.Fatalf("JSON round trip gave %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"ID":"abc"}`), &out); !errors.Is(err, ErrBadNodeID) {
		t.Fatalf("JSON with a bad ID: %v, want ErrBadNodeID", err)
	}
}

func TestNodeIDFromBytes(t *testing.T) {
	b := make([]byte, 33)
	for i := range b {
		b[i] = byte(i)
	}
	id, err := NodeIDFromBytes(b[:32])
	if err != nil || id != countingID() {
		t.Fatalf("NodeIDFromBytes(32 bytes) = %s, %v", id, err)
	}
	b[0] = 0xee
	if id[0] != 0 {
		t.Fatalf("NodeIDFromBytes kept a reference to its input")
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := NodeIDFromBytes(b[:n]); !errors.Is(err, ErrBadNodeID) {
			t.Errorf("NodeIDFromBytes(%d bytes) = %v, want ErrBadNodeID", n, err)
		}
	}
	if _, err := NodeIDFromBytes(nil); !errors.Is(err, ErrBadNodeID) {
		t.Errorf("NodeIDFromBytes(nil) = %v, want ErrBadNodeID", err)
	}
}

func TestNodeIDOrder(t *testing.T) {
	low, high := NodeID{}, NodeID{}
	high[31] = 1
	first := NodeID{0: 1}
	tests := []struct {
		a, b NodeID
		want int
	}{
		{low, low, 0},
		{low, high, -1},
		{high, low, 1},
		{high, first, -1}, // the first byte decides
		{allOnesID(), first, 1},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a.Short(), tt.b.Short(), got, tt.want)
		}
		if got := tt.a.Less(tt.b); got != (tt.want < 0) {
			t.Errorf("%s.Less(%s) = %v, want %v", tt.a.Short(), tt.b.Short(), got, tt.want < 0)
		}
	}
	if !(NodeID{}).IsZero() || high.IsZero() {
		t.Errorf("IsZero is wrong")
	}
}

// FuzzParseNodeID: ParseNodeID never panics, fails only with ErrBadNodeID, and
// whatever it accepts is the text form give or take ASCII case and surrounding white
// space, so String() parses back to the same NodeID.
func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{countingText, allOnesText, zeroText, strings.ToUpper(countingText), " " + countingText + "\n",
		countingText[:51], countingText + "a", countingText[:51] + "r", countingText[:3] + "\u212a" + countingText[4:], ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			if !errors.Is(err, ErrBadNodeID) {
				t.Fatalf("ParseNodeID(%q) failed with %v, want ErrBadNodeID", s, err)
			}
			return
		}
		text := strings.TrimSpace(s)
		for i := 0; i < len(text); i++ {
			if text[i] >= 0x80 {
				t.Fatalf("ParseNodeID(%q) accepted a non-ASCII byte", s)
			}
		}
		if strings.ToLower(text) != id.String() {
			t.Fatalf("ParseNodeID(%q) = %s, which is not the input", s, id)
		}
		back, err := ParseNodeID(id.String())
		if err != nil || back != id {
			t.Fatalf("ParseNodeID(%s) = %s, %v; want it back", id, back, err)
		}
	})
}
