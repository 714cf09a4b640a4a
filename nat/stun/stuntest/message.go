package stuntest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"

	pion "github.com/pion/stun/v3"
)

// magicCookie sits in bytes 4 to 8 of every RFC 5389 message.
const magicCookie = 0x2112A442

// answer returns the datagrams (or stream writes) that answer request b from from
// at the socket described by sd; none if b is not a Binding request.
func (s *Server) answer(b []byte, from netip.AddrPort, sd side) [][]byte {
	req := new(pion.Message)
	if err := pion.Decode(b, req); err != nil || req.Type != pion.BindingRequest {
		return nil
	}
	s.mu.Lock()
	drop := s.dropped < s.cfg.Drop
	if drop {
		s.dropped++
	}
	s.mu.Unlock()
	// Reported after counting, so that a test that has read a dropped request
	// from Requests knows the next one counts after it.
	select {
	case s.requests <- from:
	default:
	}
	if drop {
		return nil
	}

	mapped := from
	if sd.mapped.IsValid() {
		mapped = sd.mapped
	}
	id := req.TransactionID
	switch s.cfg.Mode {
	case Silent:
		return nil
	case Garbage:
		return GarbageFor(id)
	case Error401:
		return s.build(pion.BindingError, id,
			pion.ErrorCodeAttribute{Code: pion.CodeUnauthorized, Reason: []byte("Unauthorized")})
	case WrongTxID:
		id[0] ^= 0xFF
	}
	return s.build(pion.BindingSuccess, id,
		&pion.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())},
		&pion.OtherAddress{IP: sd.other.Addr().AsSlice(), Port: int(sd.other.Port())},
		&pion.ResponseOrigin{IP: sd.origin.Addr().AsSlice(), Port: int(sd.origin.Port())},
		pion.NewSoftware("crust stuntest"),
		pion.Fingerprint,
	)
}

func (s *Server) build(t pion.MessageType, id [12]byte, setters ...pion.Setter) [][]byte {
	m, err := pion.Build(append([]pion.Setter{t, pion.NewTransactionIDSetter(id)}, setters...)...)
	if err != nil {
		s.t.Errorf("stuntest: building a response: %v", err)
		return nil
	}
	return [][]byte{m.Raw}
}

// readMessage reads one STUN message from a stream. It is written independently
// of nat/stun's framing code, which the server helps to test.
func readMessage(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(hdr, body...), nil
}

// GarbageFor returns what a [Garbage] server sends in answer to transaction id:
// bytes that are not STUN at all, then messages with id that are malformed or too
// big for a Binding response. They make good fuzz seeds too.
func GarbageFor(id [12]byte) [][]byte {
	header := func(length int) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:2], pion.BindingSuccess.Value())
		binary.BigEndian.PutUint16(h[2:4], uint16(length))
		binary.BigEndian.PutUint32(h[4:8], magicCookie)
		copy(h[8:], id[:])
		return h
	}
	notSTUN := []byte("this is not a STUN message, just noise")
	// An attribute claiming 100 bytes in a 8-byte body.
	overrun := append(header(8), 0x00, 0x20, 0x00, 100, 1, 2, 3, 4)
	// A length field that disagrees with the datagram.
	badLength := append(header(40), make([]byte, 8)...)
	// A well-formed header, but 4 KiB: bigger than any Binding response.
	oversized := append(header(4096), bytes.Repeat([]byte{0}, 4096)...)
	return [][]byte{notSTUN, overrun, badLength, oversized}
}
