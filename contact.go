package crust

import (
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// NodeID names a node: its ed25519 public key. Its text form is 52 base32 characters.
type NodeID = identity.NodeID

// ParseNodeID parses the text form of a NodeID.
func ParseNodeID(s string) (NodeID, error) { return identity.ParseNodeID(s) }

// Endpoint is a protocol and address where a node listens, "tcp://192.0.2.1:5483".
type Endpoint = transport.Endpoint

// ParseEndpoint parses "proto://host:port".
func ParseEndpoint(s string) (Endpoint, error) { return transport.ParseEndpoint(s) }

// Contact is what Connect needs to reach a node (Crust's ConnectionInfo): its NodeID
// and its endpoints by kind (direct: LAN or public; UPnP-mapped; reflected), each with
// its protocol. It encodes to msgpack (MarshalBinary) and to a text form (String),
// so an application can carry it to the peer; Service.Contact returns ours.
type Contact = transport.Contact

// ParseContact parses the text form of a Contact:
// "id@proto://host:port[,...]", endpoints optionally prefixed "upnp:" or "reflected:".
func ParseContact(s string) (Contact, error) { return transport.ParseContact(s) }
