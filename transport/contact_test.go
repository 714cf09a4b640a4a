package transport_test

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

func mustEP(t testing.TB, s string) transport.Endpoint {
	t.Helper()
	ep, err := transport.ParseEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func sampleContact(t testing.TB) transport.Contact {
	var id identity.NodeID
	id[0], id[31] = 7, 9
	return transport.Contact{
		ID:        id,
		Endpoints: []transport.Endpoint{mustEP(t, "tcp://192.168.1.5:5483"), mustEP(t, "quic://[2001:db8::1]:5483")},
		UPnP:      []transport.Endpoint{mustEP(t, "tcp://198.51.100.7:40000")},
		Reflected: []transport.Endpoint{mustEP(t, "quic://198.51.100.7:41000")},
		NAT:       "endpoint-independent",
	}
}

func TestContactTextRoundTrip(t *testing.T) {
	c := sampleContact(t)
	text := c.String()
	for _, want := range []string{"@tcp://192.168.1.5:5483,", "upnp:tcp://198.51.100.7:40000", "reflected:quic://198.51.100.7:41000", ",nat:endpoint-independent"} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q lacks %q", text, want)
		}
	}
	back, err := transport.ParseContact(text)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
	if got := c.LAN(); len(got) != 1 || got[0].String() != "tcp://192.168.1.5:5483" {
		t.Errorf("LAN %v", got)
	}
	if got := c.Public(); len(got) != 1 || got[0].Proto != "quic" {
		t.Errorf("Public %v", got)
	}
}

func TestContactBinaryRoundTrip(t *testing.T) {
	c := sampleContact(t)
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back transport.Contact
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
}

func TestContactRejects(t *testing.T) {
	good := sampleContact(t)
	text := []string{
		"",
		"no-at-sign",
		good.ID.String()[:10] + "@tcp://1.2.3.4:5",
		good.ID.String() + "@tcp://1.2.3.4",
		good.ID.String() + "@upnp:udp://1.2.3.4:5",
		good.ID.String() + "@nat:tcp://1.2.3.4:5",
		good.ID.String() + "@tcp://1.2.3.4:5,nat:Symmetric",
		good.ID.String() + "@nat:" + strings.Repeat("x", 33),
		good.ID.String() + "@tcp://[fe80::1%eth0]:5",
		good.ID.String() + "@tcp://[fe80::1%a,b c]:5",
		good.ID.String() + "@quic://224.0.0.251:5353",
		good.ID.String() + "@quic://[ff02::1]:5",
		good.ID.String() + "@tcp://255.255.255.255:5",
		good.ID.String() + "@" + strings.Repeat("tcp://1.2.3.4:5,", transport.MaxContactEndpoints) + "tcp://1.2.3.4:5",
	}
	for _, s := range text {
		if _, err := transport.ParseContact(s); err == nil {
			t.Errorf("ParseContact(%q) accepted", s)
		}
	}
	many := good
	for i := range transport.MaxContactEndpoints {
		many.Reflected = append(many.Reflected, transport.Endpoint{Proto: "tcp", Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(i+1))})
	}
	tooMany, _ := many.MarshalBinary()
	badNAT := good
	badNAT.NAT = "no such\nthing"
	badNATBytes, _ := badNAT.MarshalBinary()
	goodBytes, _ := good.MarshalBinary()
	binary := map[string][]byte{
		"empty":            {},
		"not msgpack":      []byte("hello"),
		"truncated":        goodBytes[:len(goodBytes)-3],
		"trailing bytes":   append(bytes.Clone(goodBytes), 0xc0),
		"too many":         tooMany,
		"bad NAT":          badNATBytes,
		"short id":         {0x81, 0xa2, 'i', 'd', 0xc4, 0x01, 0x01},
		"bad endpoint":     {0x82, 0xa2, 'i', 'd', 0xc4, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 0xa2, 'e', 'p', 0x91, 0xa3, 'x', 'y', 'z'},
		"deeply nested":    bytes.Repeat([]byte{0x91}, 10000),
		"huge length lies": {0x81, 0xa2, 'e', 'p', 0xdd, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range binary {
		var c transport.Contact
		if err := c.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}

func TestSortLANFirst(t *testing.T) {
	eps := []transport.Endpoint{mustEP(t, "tcp://203.0.113.1:1"), mustEP(t, "tcp://10.0.0.1:1"), mustEP(t, "tcp://127.0.0.1:1"), mustEP(t, "quic://[fd00::1]:1")}
	got := transport.SortLANFirst(eps)
	want := []string{"tcp://127.0.0.1:1", "tcp://10.0.0.1:1", "quic://[fd00::1]:1", "tcp://203.0.113.1:1"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// FuzzContact decodes arbitrary bytes as a binary Contact and as text: never a panic,
// and whatever decodes re-encodes to the same Contact.
func FuzzContact(f *testing.F) {
	c := sampleContact(f)
	b, _ := c.MarshalBinary()
	f.Add(b, c.String())
	f.Add([]byte{0x80}, "x@tcp://1.2.3.4:5")
	f.Fuzz(func(t *testing.T, b []byte, text string) {
		var c transport.Contact
		if err := c.UnmarshalBinary(b); err == nil {
			again, err := c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back transport.Contact
			if err := back.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(back, c) {
				t.Fatalf("binary re-encode: %v %+v vs %+v", err, back, c)
			}
		}
		if c, err := transport.ParseContact(text); err == nil {
			back, err := transport.ParseContact(c.String())
			if err != nil || !reflect.DeepEqual(back, c) {
				t.Fatalf("text re-encode of %q: %v", text, err)
			}
		}
	})
}
