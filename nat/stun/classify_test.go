package stun

import (
	"net/netip"
	"testing"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
)

func TestClassify(t *testing.T) {
	ap := netip.MustParseAddrPort
	local := ap("192.168.1.10:5000")
	a := func(server, mapped string) Result { return Result{Server: server, Mapped: ap(mapped)} }

	tests := []struct {
		name    string
		local   netip.AddrPort
		results []Result
		want    Behavior
	}{
		{"nothing", local, nil, Unknown},
		{"one server", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000")}, Unknown},
		{"no mapped address", local, []Result{{Server: "198.51.100.1:3478"}, {Server: "198.51.100.2:3478"}}, Unknown},
		{"same server twice", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.1:3478", "203.0.113.7:40001")}, Unknown},
		{"same server, v4-mapped", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("[::ffff:198.51.100.1]:3478", "203.0.113.7:40001")}, Unknown},
		{"equal", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.2:3478", "203.0.113.7:40000")}, EndpointIndependent},
		{"same IP, other port, equal", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.1:3479", "203.0.113.7:40000")}, EndpointIndependent},
		{"port differs", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.2:3478", "203.0.113.7:40001")}, EndpointDependent},
		{"IP differs", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.2:3478", "203.0.113.8:40000")}, EndpointDependent},
		{"third server differs", local, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.2:3478", "203.0.113.7:40000"), a("198.51.100.3:3478", "203.0.113.7:40002")}, EndpointDependent},
		{"no NAT", local, []Result{a("198.51.100.1:3478", "192.168.1.10:5000"), a("198.51.100.2:3478", "192.168.1.10:5000")}, NoNAT},
		{"no NAT, one server", local, []Result{a("198.51.100.1:3478", "192.168.1.10:5000")}, NoNAT},
		{"wildcard local", ap("0.0.0.0:5000"), []Result{a("198.51.100.1:3478", "192.168.1.10:5000"), a("198.51.100.2:3478", "192.168.1.10:5000")}, EndpointIndependent},
		{"no local", netip.AddrPort{}, []Result{a("198.51.100.1:3478", "203.0.113.7:40000"), a("198.51.100.2:3478", "203.0.113.7:40000")}, EndpointIndependent},
		{"servers by name, origins differ", local, []Result{
			{Server: "stun1.example:3478", Mapped: ap("203.0.113.7:40000"), Origin: ap("198.51.100.1:3478")},
			{Server: "stun2.example:3478", Mapped: ap("203.0.113.7:40001"), Origin: ap("198.51.100.2:3478")},
		}, EndpointDependent},
		{"servers by name, same origin", local, []Result{
			{Server: "stun1.example:3478", Mapped: ap("203.0.113.7:40000"), Origin: ap("198.51.100.1:3478")},
			{Server: "stun2.example:3478", Mapped: ap("203.0.113.7:40001"), Origin: ap("198.51.100.1:3478")},
		}, Unknown},
		{"servers by name, no origin", local, []Result{a("stun1.example:3478", "203.0.113.7:40000"), a("stun2.example:3478", "203.0.113.7:40000")}, EndpointIndependent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.local, tt.results...); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestClassifyLoopback checks the whole path: one socket, two real servers.
func TestClassifyLoopback(t *testing.T) {
	c := newUDPClient(t)
	var results []Result
	for range 2 {
		r, err := c.u.Binding(t.Context(), stuntest.New(t, stuntest.Config{}).UDPAddr())
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	// On loopback nothing translates.
	if got := Classify(c.LocalAddr(), results...); got != NoNAT {
		t.Errorf("Classify = %v, want %v", got, NoNAT)
	}
	if got := Classify(netip.AddrPort{}, results...); got != EndpointIndependent {
		t.Errorf("Classify without local = %v, want %v", got, EndpointIndependent)
	}
}
