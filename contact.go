package crust

import (
	"fmt"
	"strings"

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

// Contact is what Connect needs to reach a node: who it is and where it listens.
type Contact struct {
	// ID is the node; the connection is refused unless the peer proves this key.
	ID NodeID
	// Endpoints are where to dial it, tried in order (happy eyeballs).
	Endpoints []Endpoint
}

// String returns "id@ep1,ep2", the form ParseContact reads.
func (c Contact) String() string {
	eps := make([]string, len(c.Endpoints))
	for i, ep := range c.Endpoints {
		eps[i] = ep.String()
	}
	return c.ID.String() + "@" + strings.Join(eps, ",")
}

// ParseContact parses "id@proto://host:port[,proto://host:port...]".
func ParseContact(s string) (Contact, error) {
	idText, epsText, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Contact{}, fmt.Errorf("contact %q: want id@proto://host:port[,...]", s)
	}
	id, err := identity.ParseNodeID(idText)
	if err != nil {
		return Contact{}, fmt.Errorf("contact %q: %w", s, err)
	}
	c := Contact{ID: id}
	for _, e := range strings.Split(epsText, ",") {
		ep, err := transport.ParseEndpoint(strings.TrimSpace(e))
		if err != nil {
			return Contact{}, fmt.Errorf("contact %q: %w", s, err)
		}
		c.Endpoints = append(c.Endpoints, ep)
	}
	return c, nil
}
