package actors

import (
	"net/netip"
	"testing"

	"github.com/crust-p2p/crust/transport"
)

func ep(proto, s string) transport.Endpoint {
	return transport.Endpoint{Proto: proto, Addr: netip.MustParseAddrPort(s)}
}

// TestAllForeignLAN: a direct step gets the short LAN budget when every candidate is
// a private address of another network: outside our interfaces' networks, or of a
// peer behind another public address than ours, even in the same 192.168.0.0/24.
func TestAllForeignLAN(t *testing.T) {
	ownLAN := []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24")}
	lan := []transport.Endpoint{ep("quic", "192.168.0.7:4000")}
	otherLAN := []transport.Endpoint{ep("quic", "10.1.2.3:4000")}
	elsewhere := transport.Contact{Reflected: []transport.Endpoint{ep("quic", "198.51.100.9:31000")}}
	sameRouter := transport.Contact{Reflected: []transport.Endpoint{ep("quic", "203.0.113.5:40000")}}
	for _, tt := range []struct {
		name   string
		eps    []transport.Endpoint
		c      transport.Contact
		stun   []transport.Endpoint // ours
		expect bool
	}{
		{"another LAN's prefix", otherLAN, transport.Contact{}, nil, true},
		{"our prefix, nothing known of the peer's router", lan, transport.Contact{}, nil, false},
		{"our prefix, peer behind another public address", lan, elsewhere, []transport.Endpoint{ep("quic", "203.0.113.5:40001")}, true},
		{"our prefix, peer behind our public address", lan, sameRouter, []transport.Endpoint{ep("quic", "203.0.113.5:40001")}, false},
		{"our prefix, our public address unknown", lan, elsewhere, nil, false},
		{"a public candidate", append(lan, ep("quic", "198.51.100.9:4000")), elsewhere, []transport.Endpoint{ep("quic", "203.0.113.5:1")}, false},
		{"loopback", []transport.Endpoint{ep("quic", "127.0.0.1:4000")}, elsewhere, []transport.Endpoint{ep("quic", "203.0.113.5:1")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := &node{cfg: Config{LocalPrefixes: func() []netip.Prefix { return ownLAN }}}
			n.nat.Store(&NATInfo{STUN: tt.stun})
			if got := n.allForeignLAN(tt.eps, tt.c); got != tt.expect {
				t.Errorf("allForeignLAN = %v, want %v", got, tt.expect)
			}
		})
	}
}
