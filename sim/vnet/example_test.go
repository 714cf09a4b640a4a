package vnet_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/crust-p2p/crust/sim/vnet"
)

// A host behind a port-restricted cone NAT sends to a public server, in virtual time.
func Example() {
	clock := vnet.NewVirtualClock(time.Time{})
	internet := vnet.New(vnet.Config{Clock: clock, Seed: 1})

	server, _ := internet.AddHost(netip.MustParseAddr("198.51.100.1"))
	serverConn, _ := server.ListenPacket(3478)

	nat, _ := internet.AddNAT(netip.MustParseAddr("203.0.113.1"), vnet.PortRestrictedCone())
	nat.SetLink(vnet.Link{Latency: 10 * time.Millisecond})
	laptop, _ := nat.AddHost(netip.MustParseAddr("192.168.1.2"))
	conn, _ := laptop.ListenPacket(5000)

	conn.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.1:3478")))
	clock.Advance(10 * time.Millisecond)

	buf := make([]byte, 100)
	n, from, _ := serverConn.ReadFrom(buf)
	fmt.Printf("server got %q from %v\n", buf[:n], from)
	fmt.Println(internet.Stats().Delivered, "delivered")
	// Output:
	// server got "hello" from 203.0.113.1:5000
	// 1 delivered
}
