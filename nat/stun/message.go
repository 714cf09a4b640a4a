package stun

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"

	pion "github.com/pion/stun/v3"
)

const (
	// headerSize is the fixed STUN header: type, length, magic cookie, transaction ID.
	headerSize = 20
	// magicCookie sits in bytes 4 to 8 of every RFC 5389 message.
	magicCookie = 0x2112A442
	// maxMessageSize bounds what we accept from a server. A Binding response is
	// well under 200 bytes; 2 KiB leaves room for SOFTWARE and odd extensions.
	maxMessageSize = 2048
	// maxReasonLen bounds the reason phrase we keep from an error response.
	maxReasonLen = 128

	// RFC 3489 attributes that old servers (stund) send instead of the RFC 5780
	// ones; same encoding as MAPPED-ADDRESS.
	attrSourceAddress  pion.AttrType = 0x0004 // SOURCE-ADDRESS, like RESPONSE-ORIGIN
	attrChangedAddress pion.AttrType = 0x0005 // CHANGED-ADDRESS, like OTHER-ADDRESS
)

// Result is one server's answer.
type Result struct {
	// Server is the server as the caller named it: "host:port" for [BindingTCP]
	// and [Resolve], the address's String for [UDP.Binding].
	Server string
	// Mapped is our address as the server saw it: XOR-MAPPED-ADDRESS, or
	// MAPPED-ADDRESS from servers that only send that. IPv4-mapped IPv6 addresses
	// are unmapped to IPv4.
	Mapped netip.AddrPort
	// Other is the server's alternate address (RFC 5780 OTHER-ADDRESS, or RFC 3489
	// CHANGED-ADDRESS), used to probe NAT behaviour; zero if absent.
	Other netip.AddrPort
	// Origin is the address the response was sent from (RFC 5780 RESPONSE-ORIGIN,
	// or RFC 3489 SOURCE-ADDRESS); zero if absent.
	Origin netip.AddrPort
	// RTT is the time from the last request sent to the response received.
	RTT time.Duration
}

// newRequest builds a Binding request for transaction id. It carries a
// FINGERPRINT so that servers sharing a port with other protocols can tell it apart.
func newRequest(id [12]byte) ([]byte, error) {
	m, err := pion.Build(pion.BindingRequest, pion.NewTransactionIDSetter(id), pion.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("building STUN Binding request: %w", err)
	}
	return m.Raw, nil
}

// looksLikeSTUN is the cheap test for the receive path: a header's worth of bytes,
// the two top bits of the type zero, and the magic cookie.
func looksLikeSTUN(b []byte) bool {
	return len(b) >= headerSize && b[0]&0xC0 == 0 && binary.BigEndian.Uint32(b[4:8]) == magicCookie
}

// ParseResponse decodes b as the Binding response to transaction id.
//
// It returns an error wrapping [ErrNotSTUN] for bytes that are not a well-formed
// STUN message, [ErrWrongTransaction] for another transaction, [ErrNotResponse]
// for a message that is not a Binding response, a [*ServerError] for an error
// response, and [ErrNoAddress] for a success response without a usable mapped
// address. Result.Server and Result.RTT are left for the caller to fill in.
func ParseResponse(b []byte, id [12]byte) (Result, error) {
	if err := checkFraming(b); err != nil {
		return Result{}, err
	}
	if [12]byte(b[8:headerSize]) != id {
		return Result{}, ErrWrongTransaction
	}
	m := new(pion.Message)
	if err := pion.Decode(b, m); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNotSTUN, err)
	}
	if m.Contains(pion.AttrFingerprint) {
		if err := pion.Fingerprint.Check(m); err != nil {
			return Result{}, fmt.Errorf("%w: FINGERPRINT: %v", ErrNotSTUN, err)
		}
	}
	if m.Type.Method != pion.MethodBinding {
		return Result{}, fmt.Errorf("%w: method %s", ErrNotResponse, m.Type.Method)
	}
	switch m.Type.Class {
	case pion.ClassSuccessResponse:
	case pion.ClassErrorResponse:
		return Result{}, serverError(m)
	default:
		return Result{}, fmt.Errorf("%w: class %s", ErrNotResponse, m.Type.Class)
	}

	var r Result
	var ok bool
	if r.Mapped, ok = xorAddress(m, pion.AttrXORMappedAddress); !ok {
		if r.Mapped, ok = plainAddress(m, pion.AttrMappedAddress); !ok {
			return Result{}, ErrNoAddress
		}
	}
	if r.Other, ok = plainAddress(m, pion.AttrOtherAddress); !ok {
		r.Other, _ = plainAddress(m, attrChangedAddress)
	}
	if r.Origin, ok = plainAddress(m, pion.AttrResponseOrigin); !ok {
		r.Origin, _ = plainAddress(m, attrSourceAddress)
	}
	return r, nil
}

// checkFraming checks the header of a whole message: size bounds, type bits, magic
// cookie, and a length field that accounts for exactly the bytes after the header.
func checkFraming(b []byte) error {
	switch {
	case len(b) < headerSize:
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrNotSTUN, len(b))
	case len(b) > maxMessageSize:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrNotSTUN, len(b), maxMessageSize)
	case !looksLikeSTUN(b):
		return fmt.Errorf("%w: no magic cookie", ErrNotSTUN)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || headerSize+n != len(b) {
		return fmt.Errorf("%w: length field %d for %d bytes of attributes", ErrNotSTUN, n, len(b)-headerSize)
	}
	return nil
}

// serverError turns an error response into a *ServerError.
func serverError(m *pion.Message) error {
	var code pion.ErrorCodeAttribute
	if err := code.GetFrom(m); err != nil {
		return &ServerError{}
	}
	return &ServerError{Code: int(code.Code), Reason: printable(code.Reason)}
}

// printable keeps a server's reason phrase safe to log: valid UTF-8, no control
// characters, bounded length.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "")
	}
	return strings.TrimSpace(s)
}

// hasAddressSize reports whether attribute t is present with the exact size of an
// IPv4 or IPv6 address attribute; pion's decoders accept short values and leave
// the rest of the address zero.
func hasAddressSize(m *pion.Message, t pion.AttrType) bool {
	v, err := m.Get(t)
	if err != nil || len(v) < 4 {
		return false
	}
	switch binary.BigEndian.Uint16(v[0:2]) { // family
	case 1:
		return len(v) == 4+4
	case 2:
		return len(v) == 4+16
	}
	return false
}

// xorAddress decodes an XOR-MAPPED-ADDRESS style attribute; ok is false if it is
// absent, malformed or not a usable address.
func xorAddress(m *pion.Message, t pion.AttrType) (netip.AddrPort, bool) {
	if !hasAddressSize(m, t) {
		return netip.AddrPort{}, false
	}
	var a pion.XORMappedAddress
	if err := a.GetFromAs(m, t); err != nil {
		return netip.AddrPort{}, false
	}
	return usable(a.IP, a.Port)
}

// plainAddress decodes a MAPPED-ADDRESS style attribute; ok is false if it is
// absent, malformed or not a usable address.
func plainAddress(m *pion.Message, t pion.AttrType) (netip.AddrPort, bool) {
	if !hasAddressSize(m, t) {
		return netip.AddrPort{}, false
	}
	var a pion.MappedAddress
	if err := a.GetFromAs(m, t); err != nil {
		return netip.AddrPort{}, false
	}
	return usable(a.IP, a.Port)
}

// usable converts a decoded address, refusing port 0 and the unspecified address,
// which no NAT hands out.
func usable(ip []byte, port int) (netip.AddrPort, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || addr.IsUnspecified() || port <= 0 || port > 0xFFFF {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// sameEndpoint compares addresses as the network sees them: an IPv4-mapped IPv6
// address equals its IPv4 form, and zones are ignored.
func sameEndpoint(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap().WithZone("") == b.Addr().Unmap().WithZone("")
}
