package beacon

import (
	"encoding/binary"
	"fmt"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Magic opens every beacon packet.
const Magic = "CRST"

// Version is the beacon wire version this package speaks.
const Version = 1

// HeaderSize is the size of the fixed header every packet starts with: magic (4),
// version (1), type (1), NodeID (32), TCP port (2), QUIC port (2). A Query and an
// Announce are exactly this long.
const HeaderSize = len(Magic) + 1 + 1 + identity.NodeIDSize + 2 + 2

// MaxPacketSize bounds a beacon packet in bytes, so that it fits one datagram on any
// path (IPv6's minimum MTU of 1280 less IP and UDP headers).
const MaxPacketSize = 1200

// MaxContacts bounds the bootstrap contacts in a Reply.
const MaxContacts = 8

// Type is the kind of a beacon packet.
type Type uint8

// The packet types.
const (
	// Query asks the nodes on the LAN to make themselves known; each answers with a
	// Reply.
	Query Type = 1
	// Announce tells the LAN that a node is there; nobody answers it.
	Announce Type = 2
	// Reply answers a Query: the node's ports plus a few bootstrap contacts.
	Reply Type = 3
)

// String returns the type's name, for logs.
func (t Type) String() string {
	switch t {
	case Query:
		return "query"
	case Announce:
		return "announce"
	case Reply:
		return "reply"
	default:
		return fmt.Sprintf("type(%d)", uint8(t))
	}
}

func (t Type) valid() bool { return t == Query || t == Announce || t == Reply }

// Packet is one beacon packet.
//
// Layout, integers big-endian: "CRST", version 1, type, the 32-byte NodeID, TCP port
// (2 bytes), QUIC port (2 bytes). A Reply then has a contact count (1 byte, at most
// MaxContacts) and for each contact a 2-byte length and its msgpack encoding
// (transport.Contact.MarshalBinary). Nothing may follow.
type Packet struct {
	// Type is Query, Announce or Reply.
	Type Type
	// ID is the sender's NodeID; never zero.
	ID identity.NodeID
	// TCPPort is the sender's TCP listen port, 0 if it does not listen on TCP.
	TCPPort uint16
	// QUICPort is the sender's QUIC listen port, 0 if it does not listen on QUIC.
	QUICPort uint16
	// Contacts are bootstrap contacts the sender passes on; only a Reply has them.
	Contacts []transport.Contact
}

// MarshalBinary encodes p in at most MaxPacketSize bytes; see Encode.
func (p Packet) MarshalBinary() ([]byte, error) { return p.Encode(MaxPacketSize) }

// Encode encodes p in at most budget bytes (MaxPacketSize if budget is larger). A
// Reply keeps its contacts in order as long as they fit and drops any that would push
// the packet over budget or past MaxContacts, so the caller bounds a reply by the
// size of the query that caused it. It fails on an unknown type, a zero NodeID,
// contacts on a packet that is not a Reply, a contact that does not encode, or a
// budget too small for the header (and, for a Reply, its count byte).
func (p Packet) Encode(budget int) ([]byte, error) {
	if !p.Type.valid() {
		return nil, fmt.Errorf("encoding beacon packet: %w: %d", ErrType, p.Type)
	}
	if p.ID.IsZero() {
		return nil, fmt.Errorf("encoding beacon %s: %w", p.Type, ErrNodeID)
	}
	if p.Type != Reply && len(p.Contacts) > 0 {
		return nil, fmt.Errorf("encoding beacon %s with %d contacts: %w", p.Type, len(p.Contacts), ErrContactsNotReply)
	}
	budget = min(budget, MaxPacketSize)
	need := HeaderSize
	if p.Type == Reply {
		need++
	}
	if budget < need {
		return nil, fmt.Errorf("encoding beacon %s in %d bytes (needs %d): %w", p.Type, budget, need, ErrBudget)
	}

	b := make([]byte, 0, budget)
	b = append(b, Magic...)
	b = append(b, Version, byte(p.Type))
	b = append(b, p.ID[:]...)
	b = binary.BigEndian.AppendUint16(b, p.TCPPort)
	b = binary.BigEndian.AppendUint16(b, p.QUICPort)
	if p.Type != Reply {
		return b, nil
	}
	countAt := len(b)
	b = append(b, 0)
	count := 0
	for _, c := range p.Contacts {
		if count == MaxContacts {
			break
		}
		cb, err := c.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encoding beacon reply: contact %s: %w", c.ID.Short(), err)
		}
		if len(b)+2+len(cb) > budget {
			continue // a smaller contact further on may still fit
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(cb)))
		b = append(b, cb...)
		count++
	}
	b[countAt] = byte(count)
	return b, nil
}

// Parse decodes one beacon packet. It rejects, with an error wrapping one of the
// sentinels in errors.go, packets that are short (ErrShort), over MaxPacketSize
// (ErrTooLarge), not beacons (ErrMagic), of another version (ErrVersion), of an
// unknown type (ErrType), without a NodeID (ErrNodeID), with bytes after the end
// (ErrTrailing) or, in a Reply, with too many (ErrTooManyContacts) or malformed
// (ErrContact) contacts. The Packet shares no memory with b.
func Parse(b []byte) (Packet, error) {
	if len(b) > MaxPacketSize {
		return Packet{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxPacketSize)
	}
	if head := b[:min(len(b), len(Magic))]; string(head) != Magic[:len(head)] {
		return Packet{}, fmt.Errorf("%w: starts %x, want %x", ErrMagic, head, Magic)
	}
	if len(b) < HeaderSize {
		return Packet{}, fmt.Errorf("%w: %d bytes, the header needs %d", ErrShort, len(b), HeaderSize)
	}
	if v := b[4]; v != Version {
		return Packet{}, fmt.Errorf("%w: version %d, this node speaks %d", ErrVersion, v, Version)
	}
	p := Packet{Type: Type(b[5])}
	if !p.Type.valid() {
		return Packet{}, fmt.Errorf("%w: %d", ErrType, b[5])
	}
	copy(p.ID[:], b[6:6+identity.NodeIDSize])
	if p.ID.IsZero() {
		return Packet{}, fmt.Errorf("beacon %s: %w", p.Type, ErrNodeID)
	}
	rest := b[6+identity.NodeIDSize:]
	p.TCPPort = binary.BigEndian.Uint16(rest)
	p.QUICPort = binary.BigEndian.Uint16(rest[2:])
	rest = rest[4:]
	if p.Type != Reply {
		if len(rest) > 0 {
			return Packet{}, fmt.Errorf("beacon %s: %w: %d bytes", p.Type, ErrTrailing, len(rest))
		}
		return p, nil
	}

	if len(rest) < 1 {
		return Packet{}, fmt.Errorf("beacon reply: %w: no contact count", ErrShort)
	}
	count := int(rest[0])
	rest = rest[1:]
	if count > MaxContacts {
		return Packet{}, fmt.Errorf("%w: %d, at most %d", ErrTooManyContacts, count, MaxContacts)
	}
	for i := range count {
		if len(rest) < 2 {
			return Packet{}, fmt.Errorf("beacon reply: contact %d of %d: %w: no length", i+1, count, ErrShort)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n {
			return Packet{}, fmt.Errorf("beacon reply: contact %d of %d: %w: %d bytes, %d left", i+1, count, ErrShort, n, len(rest))
		}
		var c transport.Contact
		if err := c.UnmarshalBinary(rest[:n]); err != nil {
			return Packet{}, fmt.Errorf("beacon reply: contact %d of %d: %w: %w", i+1, count, ErrContact, err)
		}
		p.Contacts = append(p.Contacts, c)
		rest = rest[n:]
	}
	if len(rest) > 0 {
		return Packet{}, fmt.Errorf("beacon reply: %w: %d bytes", ErrTrailing, len(rest))
	}
	return p, nil
}
