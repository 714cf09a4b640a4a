package beacon

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/transport"
)

// unhex joins hex fragments (spaces allowed) into bytes.
func unhex(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(parts, ""), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const vecID = "0102030405060708090a0b0c0d0e0f10 1112131415161718191a1b1c1d1e1f20"

// Pinned bytes: a change here is a wire-format change and needs a new Version.
func TestPacketVectors(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want []byte
	}{
		{
			name: "query",
			p:    Packet{Type: Query, ID: seqID(1), TCPPort: 5483},
			want: unhex(t,
				"43525354", // "CRST"
				"01",       // version
				"01",       // type Query
				vecID,
				"156b", // TCP port 5483
				"0000", // no QUIC
			),
		},
		{
			name: "announce",
			p:    Packet{Type: Announce, ID: seqID(1), QUICPort: 443},
			want: unhex(t, "43525354 01 02", vecID, "0000 01bb"),
		},
		{
			name: "reply with one contact",
			p: Packet{Type: Reply, ID: seqID(1), TCPPort: 5483, QUICPort: 5484,
				Contacts: []transport.Contact{vecContact()}},
			want: unhex(t,
				"43525354 01 03", vecID, "156b 156c",
				"01",   // one contact
				"0042", // of 66 bytes, msgpack:
				"82",   // map of 2
				"a26964 c420 4142434445464748494a4b4c4d4e4f50 5152535455565758595a5b5c5d5e5f60", // "id": 32 bytes
				"a26570 91 b7 7463703a2f2f3139322e3136382e312e31303a35343833",                   // "ep": ["tcp://192.168.1.10:5483"]
			),
		},
		{
			name: "reply without contacts",
			p:    Packet{Type: Reply, ID: seqID(1)},
			want: unhex(t, "43525354 01 03", vecID, "0000 0000 00"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("encoded\n %x\nwant\n %x", got, tt.want)
			}
			back, err := Parse(tt.want)
			if err != nil {
				t.Fatalf("parsing the vector: %v", err)
			}
			if !reflect.DeepEqual(back, tt.p) {
				t.Fatalf("parsed %+v, want %+v", back, tt.p)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	query := mustEncode(t, Packet{Type: Query, ID: seqID(1)}, MaxPacketSize)
	reply := mustEncode(t, Packet{Type: Reply, ID: seqID(1), Contacts: []transport.Contact{vecContact()}}, MaxPacketSize)
	with := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	// A reply header (count 0) followed by the given contact entries.
	replyWith := func(count byte, entries ...[]byte) []byte {
		b := append(bytes.Clone(reply[:HeaderSize]), count)
		for _, e := range entries {
			b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		}
		return b
	}
	contact := reply[HeaderSize+3:]

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"magic only", []byte("CRST"), ErrShort},
		{"header less one byte", query[:HeaderSize-1], ErrShort},
		{"oversized", append(bytes.Clone(query), make([]byte, MaxPacketSize)...), ErrTooLarge},
		{"wrong magic", with(query, 0, 'X'), ErrMagic},
		{"short wrong magic", []byte("CX"), ErrMagic},
		{"version 0", with(query, 4, 0), ErrVersion},
		{"version 2", with(query, 4, 2), ErrVersion},
		{"type 0", with(query, 5, 0), ErrType},
		{"type 4", with(query, 5, 4), ErrType},
		{"zero node ID", append(append(bytes.Clone(query[:6]), make([]byte, 32)...), 0, 0, 0, 0), ErrNodeID},
		{"query with trailing byte", append(bytes.Clone(query), 0), ErrTrailing},
		{"reply without count", reply[:HeaderSize], ErrShort},
		{"reply with trailing byte", append(bytes.Clone(reply), 0), ErrTrailing},
		{"reply count beyond entries", replyWith(2, contact), ErrShort},
		{"reply entry length cut", append(replyWith(0), 0), ErrTrailing},
		{"reply contact truncated", reply[:len(reply)-1], ErrShort},
		{"reply too many contacts", replyWith(MaxContacts + 1), ErrTooManyContacts},
		{"reply contact not msgpack", replyWith(1, []byte{0xc1}), ErrContact},
		{"reply contact empty", replyWith(1, nil), ErrContact},
		{"reply contact bad ID", replyWith(1, unhex(t, "81 a26964 c403 010203")), ErrContact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %v", p, err, tt.want)
			}
			if !reflect.DeepEqual(p, Packet{}) {
				t.Fatalf("Parse returned %+v with its error", p)
			}
		})
	}
	// Also a sanity check of the fixture: the untouched packets parse.
	for _, b := range [][]byte{query, reply, replyWith(1, contact)} {
		if _, err := Parse(b); err != nil {
			t.Fatalf("fixture %x does not parse: %v", b, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		p      Packet
		budget int
		want   error
	}{
		{"unknown type", Packet{Type: 9, ID: seqID(1)}, MaxPacketSize, ErrType},
		{"zero ID", Packet{Type: Query}, MaxPacketSize, ErrNodeID},
		{"announce with contacts", Packet{Type: Announce, ID: seqID(1), Contacts: []transport.Contact{vecContact()}}, MaxPacketSize, ErrContactsNotReply},
		{"budget below header", Packet{Type: Query, ID: seqID(1)}, HeaderSize - 1, ErrBudget},
		{"reply budget without count", Packet{Type: Reply, ID: seqID(1)}, HeaderSize, ErrBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.p.Encode(tt.budget); !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %x, %v; want %v", b, err, tt.want)
			}
		})
	}
}

// bigContact returns a contact with n endpoints, so its size can be varied.
func bigContact(first byte, n int) transport.Contact {
	c := transport.Contact{ID: seqID(first)}
	for i := range n {
		c.Endpoints = append(c.Endpoints, transport.Endpoint{Proto: "tcp",
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5483)})
	}
	return c
}

func TestEncodeReplyBudget(t *testing.T) {
	small := vecContact()         // 66 bytes encoded, 68 with its length
	large := bigContact(0x80, 20) // 454 bytes encoded: two fit in a packet, three do not
	tests := []struct {
		name     string
		contacts []transport.Contact
		budget   int
		want     []transport.Contact
	}{
		{"no room for any", []transport.Contact{small}, HeaderSize + 1 + 67, nil},
		{"exactly one", []transport.Contact{small, small}, HeaderSize + 1 + 68, []transport.Contact{small}},
		{"large skipped, smaller after it kept", []transport.Contact{large, small}, 300, []transport.Contact{small}},
		{"budget clamped to MaxPacketSize", []transport.Contact{large, large, large, small}, 1 << 20, []transport.Contact{large, large, small}},
		{"at most MaxContacts", repeat(small, MaxContacts+3), MaxPacketSize, repeat(small, MaxContacts)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, Packet{Type: Reply, ID: seqID(1), Contacts: tt.contacts}, tt.budget)
			if len(b) > min(tt.budget, MaxPacketSize) {
				t.Fatalf("encoded %d bytes over budget %d", len(b), tt.budget)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Contacts, tt.want) {
				t.Fatalf("kept %d contacts %v, want %d %v", len(p.Contacts), p.Contacts, len(tt.want), tt.want)
			}
		})
	}
}

func repeat(c transport.Contact, n int) []transport.Contact {
	out := make([]transport.Contact, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, p := range []Packet{
		{Type: Query, ID: seqID(1), TCPPort: 5483},
		{Type: Announce, ID: seqID(1), QUICPort: 443},
		{Type: Reply, ID: seqID(1), Contacts: []transport.Contact{vecContact(), bigContact(9, 3)}},
	} {
		f.Add(mustEncode(f, p, MaxPacketSize))
	}
	f.Add([]byte("CRST"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed %+v does not re-encode: %v", p, err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded %x does not parse: %v", again, err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip changed the packet:\n%+v\n%+v", p, back)
		}
	})
}
