package stun

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	pion "github.com/pion/stun/v3"
)

// rfc5769ID is the transaction ID of the RFC 5769 sample responses.
var rfc5769ID = [12]byte{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae}

// RFC 5769 §2.2: sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS,
// MESSAGE-INTEGRITY, FINGERPRINT).
var rfc5769IPv4 = []byte("\x01\x01\x00\x3c" +
	"\x21\x12\xa4\x42" +
	"\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae" +
	"\x80\x22\x00\x0b" +
	"\x74\x65\x73\x74\x20\x76\x65\x63\x74\x6f\x72\x20" +
	"\x00\x20\x00\x08" +
	"\x00\x01\xa1\x47\xe1\x12\xa6\x43" +
	"\x00\x08\x00\x14" +
	"\x2b\x91\xf5\x99\xfd\x9e\x90\xc3\x8c\x74\x89\xf9" +
	"\x2a\xf9\xba\x53\xf0\x6b\xe7\xd7" +
	"\x80\x28\x00\x04" +
	"\xc0\x7d\x4c\x96")

// RFC 5769 §2.3: sample IPv6 response.
var rfc5769IPv6 = []byte("\x01\x01\x00\x48" +
	"\x21\x12\xa4\x42" +
	"\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae" +
	"\x80\x22\x00\x0b" +
	"\x74\x65\x73\x74\x20\x76\x65\x63\x74\x6f\x72\x20" +
	"\x00\x20\x00\x14" +
	"\x00\x02\xa1\x47" +
	"\x01\x13\xa9\xfa\xa5\xd3\xf1\x79" +
	"\xbc\x25\xf4\xb5\xbe\xd2\xb9\xd9" +
	"\x00\x08\x00\x14" +
	"\xa3\x82\x95\x4e\x4b\xe6\x7b\xf1\x17\x84\xc9\x7c" +
	"\x82\x92\xc2\x75\xbf\xe3\xed\x41" +
	"\x80\x28\x00\x04" +
	"\xc8\xfb\x0b\x4c")

// build makes a message for tests, failing the test on error.
func build(t testing.TB, setters ...pion.Setter) []byte {
	t.Helper()
	m, err := pion.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// rawAttr adds an attribute with exactly the given value.
type rawAttr struct {
	typ   pion.AttrType
	value []byte
}

func (a rawAttr) AddTo(m *pion.Message) error {
	m.Add(a.typ, a.value)
	return nil
}

func TestParseResponse(t *testing.T) {
	id := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	txid := pion.NewTransactionIDSetter(id)
	mapped := netip.MustParseAddrPort("203.0.113.7:40000")
	other := netip.MustParseAddrPort("198.51.100.2:3479")
	origin := netip.MustParseAddrPort("198.51.100.1:3478")
	xorMapped := &pion.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())}
	plainMapped := &pion.MappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())}

	badFingerprint := build(t, pion.BindingSuccess, txid, xorMapped, pion.Fingerprint)
	badFingerprint[len(badFingerprint)-1] ^= 1

	tests := []struct {
		name    string
		b       []byte
		id      [12]byte
		want    Result
		wantErr error
	}{
		{"RFC 5769 IPv4", rfc5769IPv4, rfc5769ID,
			Result{Mapped: netip.MustParseAddrPort("192.0.2.1:32853")}, nil},
		{"RFC 5769 IPv6", rfc5769IPv6, rfc5769ID,
			Result{Mapped: netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853")}, nil},
		{"all attributes", build(t, pion.BindingSuccess, txid, xorMapped,
			&pion.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())},
			&pion.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())}, pion.Fingerprint), id,
			Result{Mapped: mapped, Other: other, Origin: origin}, nil},
		{"RFC 3489 server", build(t, pion.BindingSuccess, txid, plainMapped,
			rawAttr{attrSourceAddress, []byte{0, 1, 0x0d, 0x96, 198, 51, 100, 1}},
			rawAttr{attrChangedAddress, []byte{0, 1, 0x0d, 0x97, 198, 51, 100, 2}}), id,
			Result{Mapped: mapped, Other: other, Origin: origin}, nil},
		{"XOR-MAPPED-ADDRESS wins", build(t, pion.BindingSuccess, txid,
			&pion.MappedAddress{IP: []byte{10, 0, 0, 1}, Port: 1}, xorMapped), id,
			Result{Mapped: mapped}, nil},
		{"short XOR-MAPPED-ADDRESS falls back", build(t, pion.BindingSuccess, txid,
			rawAttr{pion.AttrXORMappedAddress, []byte{0, 1, 0, 0, 1}}, plainMapped), id,
			Result{Mapped: mapped}, nil},
		{"IPv4-mapped IPv6 is unmapped", build(t, pion.BindingSuccess, txid,
			rawAttr{pion.AttrMappedAddress, append([]byte{0, 2, 0x9c, 0x40}, netip.MustParseAddr("::ffff:203.0.113.7").AsSlice()...)}), id,
			Result{Mapped: mapped}, nil},

		{"error response", build(t, pion.BindingError, txid,
			pion.ErrorCodeAttribute{Code: 401, Reason: []byte("Unauthorized")}), id, Result{}, &ServerError{Code: 401, Reason: "Unauthorized"}},
		{"error response without code", build(t, pion.BindingError, txid), id, Result{}, &ServerError{}},
		{"no address", build(t, pion.BindingSuccess, txid, pion.NewSoftware("x")), id, Result{}, ErrNoAddress},
		{"port 0", build(t, pion.BindingSuccess, txid, &pion.XORMappedAddress{IP: []byte{1, 2, 3, 4}}), id, Result{}, ErrNoAddress},
		{"unspecified address", build(t, pion.BindingSuccess, txid, &pion.XORMappedAddress{IP: []byte{0, 0, 0, 0}, Port: 9}), id, Result{}, ErrNoAddress},
		{"bad family", build(t, pion.BindingSuccess, txid, rawAttr{pion.AttrMappedAddress, []byte{0, 3, 0, 9, 1, 2, 3, 4}}), id, Result{}, ErrNoAddress},
		{"wrong transaction", build(t, pion.BindingSuccess, pion.NewTransactionIDSetter([12]byte{9}), xorMapped), id, Result{}, ErrWrongTransaction},
		{"request", build(t, pion.BindingRequest, txid), id, Result{}, ErrNotResponse},
		{"indication", build(t, pion.NewType(pion.MethodBinding, pion.ClassIndication), txid), id, Result{}, ErrNotResponse},
		{"allocate response", build(t, pion.NewType(pion.MethodAllocate, pion.ClassSuccessResponse), txid, xorMapped), id, Result{}, ErrNotResponse},
		{"bad fingerprint", badFingerprint, id, Result{}, ErrNotSTUN},
		{"trailing bytes", append(build(t, pion.BindingSuccess, txid, xorMapped), 0, 0, 0, 0), id, Result{}, ErrNotSTUN},
		{"truncated", build(t, pion.BindingSuccess, txid, xorMapped)[:24], id, Result{}, ErrNotSTUN},
		{"short", []byte{1, 1, 0, 0}, id, Result{}, ErrNotSTUN},
		{"no cookie", make([]byte, 20), id, Result{}, ErrNotSTUN},
		{"oversized", append(build(t, pion.BindingSuccess, txid, xorMapped), make([]byte, 4096)...), id, Result{}, ErrNotSTUN},
		{"attribute overruns message", build(t, pion.BindingSuccess, txid, rawAttr{pion.AttrSoftware, make([]byte, 4)}), id, Result{}, nil},
	}
	// The last case is fixed up by hand: claim a longer attribute than there is.
	last := &tests[len(tests)-1]
	binary.BigEndian.PutUint16(last.b[22:24], 200)
	last.wantErr = ErrNotSTUN

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse(tt.b, tt.id)
			var wantSE *ServerError
			if errors.As(tt.wantErr, &wantSE) {
				var se *ServerError
				if !errors.As(err, &se) || *se != *wantSE {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("ParseResponse = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestServerErrorMessage(t *testing.T) {
	tests := []struct {
		err  ServerError
		want string
	}{
		{ServerError{Code: 401, Reason: "Unauthorized"}, "stun server answered error 401 Unauthorized"},
		{ServerError{Code: 500}, "stun server answered error 500"},
		{ServerError{}, "stun server answered an error without an ERROR-CODE"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestReasonIsSanitised(t *testing.T) {
	id := [12]byte{7}
	reason := "Bad\x1b[31m\nRequest\xff" + strings.Repeat("x", 500)
	b := build(t, pion.BindingError, pion.NewTransactionIDSetter(id),
		pion.ErrorCodeAttribute{Code: 400, Reason: []byte(reason)})
	_, err := ParseResponse(b, id)
	var se *ServerError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	if len(se.Reason) > maxReasonLen || strings.ContainsAny(se.Reason, "\x1b\n") || !strings.HasPrefix(se.Reason, "Bad?[31m?Request?") {
		t.Errorf("Reason = %q", se.Reason)
	}
}

func TestRequestIsWellFormed(t *testing.T) {
	id := pion.NewTransactionID()
	b, err := newRequest(id)
	if err != nil {
		t.Fatal(err)
	}
	m := new(pion.Message)
	if err := pion.Decode(b, m); err != nil {
		t.Fatal(err)
	}
	if m.Type != pion.BindingRequest || m.TransactionID != id {
		t.Errorf("request is %v %x", m.Type, m.TransactionID)
	}
	if err := pion.Fingerprint.Check(m); err != nil {
		t.Errorf("FINGERPRINT: %v", err)
	}
}
