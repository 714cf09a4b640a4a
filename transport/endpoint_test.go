package transport_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/transport"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    transport.Endpoint
		text    string // String() of the result; empty: in itself
		wantErr string // substring of the error; empty: must parse
	}{
		{in: "tcp://1.2.3.4:5", want: transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("1.2.3.4:5")}},
		{in: "tcp://[::1]:5", want: transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("[::1]:5")}},
		{in: "quic://[2001:db8::1]:443", want: transport.Endpoint{Proto: "quic", Addr: netip.MustParseAddrPort("[2001:db8::1]:443")}},
		{in: "tcp://192.0.2.1:65535", want: transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("192.0.2.1:65535")}},
		// An IPv4-mapped IPv6 address is the IPv4 address.
		{in: "tcp://[::ffff:1.2.3.4]:5", want: transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("1.2.3.4:5")}, text: "tcp://1.2.3.4:5"},

		{in: "", wantErr: "want proto://host:port"},
		{in: "1.2.3.4:5", wantErr: "want proto://host:port"},
		{in: "tcp:1.2.3.4:5", wantErr: "want proto://host:port"},
		{in: "udp://1.2.3.4:5", wantErr: `unknown protocol "udp"`},
		{in: "TCP://1.2.3.4:5", wantErr: `unknown protocol "TCP"`},
		{in: "://1.2.3.4:5", wantErr: `unknown protocol ""`},
		{in: "tcp://", wantErr: "tcp://"},
		{in: "tcp://1.2.3.4", wantErr: "tcp://1.2.3.4"},
		{in: "tcp://1.2.3.4:", wantErr: "tcp://1.2.3.4:"},
		{in: "tcp://[::1]", wantErr: "tcp://[::1]"},
		{in: "tcp://::1:5", wantErr: "tcp://::1:5"},
		{in: "tcp://1.2.3.4:0", wantErr: "non-zero port"},
		{in: "tcp://1.2.3.4:65536", wantErr: "tcp://1.2.3.4:65536"},
		{in: "tcp://1.2.3.4:-1", wantErr: "tcp://1.2.3.4:-1"},
		{in: "tcp://0.0.0.0:5", wantErr: "concrete address"},
		{in: "tcp://[::]:5", wantErr: "concrete address"},
		{in: "tcp://example.com:5", wantErr: "tcp://example.com:5"},
		{in: "tcp://localhost:5", wantErr: "tcp://localhost:5"},
		{in: "tcp://1.2.3.4:5/path", wantErr: "tcp://1.2.3.4:5/path"},
		{in: " tcp://1.2.3.4:5", wantErr: "unknown protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := transport.ParseEndpoint(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseEndpoint(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEndpoint(%q) error %q does not say %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEndpoint(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseEndpoint(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			text := tt.text
			if text == "" {
				text = tt.in
			}
			if got.String() != text {
				t.Fatalf("String() = %q, want %q", got.String(), text)
			}
		})
	}
}

func TestEndpointText(t *testing.T) {
	ep := transport.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("[2001:db8::7]:5483")}
	js, err := json.Marshal(map[string]transport.Endpoint{"ep": ep})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ep":"tcp://[2001:db8::7]:5483"}`; string(js) != want {
		t.Fatalf("JSON = %s, want %s", js, want)
	}
	var back map[string]transport.Endpoint
	if err := json.Unmarshal(js, &back); err != nil || back["ep"] != ep {
		t.Fatalf("JSON round trip = %v, %v; want %v", back, err, ep)
	}
	keep := ep
	if err := keep.UnmarshalText([]byte("tcp://example.com:1")); err == nil {
		t.Fatalf("UnmarshalText accepted a host name")
	}
	if keep != ep {
		t.Fatalf("a failed UnmarshalText changed the endpoint to %v", keep)
	}
}

// namedAddr is a net.Addr that is neither TCP nor UDP, as a virtual network might use.
type namedAddr struct{ network, s string }

func (a namedAddr) Network() string { return a.network }
func (a namedAddr) String() string  { return a.s }

func TestAddrPortOf(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want netip.AddrPort
	}{
		{"TCP v4", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}, netip.MustParseAddrPort("192.0.2.1:80")},
		{"TCP v6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, netip.MustParseAddrPort("[2001:db8::1]:443")},
		{"TCP v4 in 16 bytes", &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 5}, netip.MustParseAddrPort("10.0.0.1:5")},
		{"UDP v4", &net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 3478}, netip.MustParseAddrPort("198.51.100.2:3478")},
		{"UDP v4-mapped", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::ffff:1.2.3.4]:9")), netip.MustParseAddrPort("1.2.3.4:9")},
		{"other type holding an IP", namedAddr{"sim", "203.0.113.5:7"}, netip.MustParseAddrPort("203.0.113.5:7")},
		{"other type holding a mapped IP", namedAddr{"sim", "[::ffff:203.0.113.5]:7"}, netip.MustParseAddrPort("203.0.113.5:7")},
		{"other type holding no IP", namedAddr{"sim", "node-a"}, netip.AddrPort{}},
		{"unix socket", &net.UnixAddr{Name: "/tmp/sock", Net: "unix"}, netip.AddrPort{}},
		{"nil TCP address", (*net.TCPAddr)(nil), netip.AddrPort{}},
		{"nil", nil, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transport.AddrPortOf(tt.addr); got != tt.want {
				t.Fatalf("AddrPortOf(%v) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func ExampleParseEndpoint() {
	for _, s := range []string{"tcp://192.0.2.1:5483", "tcp://[::ffff:192.0.2.1]:5483", "tcp://example.com:5483"} {
		ep, err := transport.ParseEndpoint(s)
		if err != nil {
			fmt.Println("refused", s)
			continue
		}
		fmt.Println(ep.Proto, ep.Addr)
	}
	// Output:
	// tcp 192.0.2.1:5483
	// tcp 192.0.2.1:5483
	// refused tcp://example.com:5483
}
