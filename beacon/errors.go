package beacon

import "errors"

// ErrShort means a packet ended before its header or one of its fields did.
var ErrShort = errors.New("beacon packet truncated")

// ErrTooLarge means a packet is longer than MaxPacketSize.
var ErrTooLarge = errors.New("beacon packet larger than the maximum")

// ErrMagic means a packet does not start with Magic: it is not a crust beacon.
var ErrMagic = errors.New("not a crust beacon packet (wrong magic)")

// ErrVersion means a packet is of a beacon version this node does not speak.
var ErrVersion = errors.New("unsupported beacon version")

// ErrType means a packet's type is none of Query, Announce and Reply.
var ErrType = errors.New("unknown beacon packet type")

// ErrNodeID means a packet carries the zero NodeID, which no node has.
var ErrNodeID = errors.New("beacon packet without a node ID")

// ErrTrailing means bytes follow the end of a well-formed packet.
var ErrTrailing = errors.New("trailing bytes after beacon packet")

// ErrTooManyContacts means a Reply lists more than MaxContacts contacts.
var ErrTooManyContacts = errors.New("too many contacts in beacon reply")

// ErrContact means a contact in a Reply does not decode.
var ErrContact = errors.New("malformed contact in beacon reply")

// ErrContactsNotReply means a Query or Announce was given contacts to encode; only a
// Reply carries them.
var ErrContactsNotReply = errors.New("only a beacon reply carries contacts")

// ErrBudget means the size budget given to Encode is smaller than the packet's header.
var ErrBudget = errors.New("size budget below the beacon header size")
