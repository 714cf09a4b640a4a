package beacon

import (
	"net/netip"
	"testing"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// seqID returns the NodeID whose bytes count up from first.
func seqID(first byte) identity.NodeID {
	var id identity.NodeID
	for i := range id {
		id[i] = first + byte(i)
	}
	return id
}

// vecContact is the contact in the pinned Reply vector.
func vecContact() transport.Contact {
	return transport.Contact{
		ID:        seqID(0x41),
		Endpoints: []transport.Endpoint{{Proto: "tcp", Addr: netip.MustParseAddrPort("192.168.1.10:5483")}},
	}
}

func mustEncode(t testing.TB, p Packet, budget int) []byte {
	t.Helper()
	b, err := p.Encode(budget)
	if err != nil {
		t.Fatalf("encoding %+v: %v", p, err)
	}
	return b
}
