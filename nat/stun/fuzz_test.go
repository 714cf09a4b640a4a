package stun

import (
	"net/netip"
	"testing"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
	pion "github.com/pion/stun/v3"
)

func FuzzParseResponse(f *testing.F) {
	id := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	txid := pion.NewTransactionIDSetter(id)
	f.Add(rfc5769IPv4)
	f.Add(rfc5769IPv6)
	f.Add(build(f, pion.BindingSuccess, txid,
		&pion.XORMappedAddress{IP: []byte{203, 0, 113, 7}, Port: 40000},
		&pion.OtherAddress{IP: []byte{198, 51, 100, 2}, Port: 3479},
		&pion.ResponseOrigin{IP: []byte{198, 51, 100, 1}, Port: 3478},
		pion.Fingerprint))
	f.Add(build(f, pion.BindingSuccess, txid, &pion.MappedAddress{IP: []byte{203, 0, 113, 7}, Port: 40000}))
	f.Add(build(f, pion.BindingError, txid, pion.ErrorCodeAttribute{Code: 401, Reason: []byte("Unauthorized")}, pion.Fingerprint))
	f.Add(build(f, pion.BindingRequest, txid))
	for _, g := range stuntest.GarbageFor(id) {
		f.Add(g)
	}
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		// Parse both for the fixed ID and for the message's own, so that mutations
		// of the transaction ID still reach the attribute parsers.
		ids := [][12]byte{id}
		if len(b) >= headerSize {
			ids = append(ids, [12]byte(b[8:headerSize]))
		}
		for _, id := range ids {
			r, err := ParseResponse(b, id)
			if err != nil {
				if r != (Result{}) {
					t.Fatalf("error %v with a non-zero result %+v", err, r)
				}
				continue
			}
			if !r.Mapped.IsValid() || r.Mapped.Port() == 0 || r.Mapped.Addr().Is4In6() {
				t.Fatalf("success with a bad mapped address %v", r.Mapped)
			}
			if len(b) > maxMessageSize {
				t.Fatalf("accepted %d bytes", len(b))
			}
		}
		// The UDP receive path must not panic or claim what is not ours either.
		u := NewUDP(func([]byte, netip.AddrPort) error { return nil })
		if u.HandlePacket(b, netip.MustParseAddrPort("127.0.0.1:3478")) {
			t.Fatal("HandlePacket claimed a packet with nothing pending")
		}
	})
}
