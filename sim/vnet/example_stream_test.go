package vnet_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/crust-p2p/crust/sim/vnet"
)

// A host behind a NAT dials a public listener over a stream; the listener sees the
// NAT's mapping. Blocking calls need the scheduler to run, so this one uses the real
// clock.
func ExampleHost_Dial() {
	internet := vnet.New(vnet.Config{})
	server, _ := internet.AddHost(netip.MustParseAddr("198.51.100.1"))
	ln, _ := server.Listen(443)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "you are %v", c.RemoteAddr())
	}()

	nat, _ := internet.AddNAT(netip.MustParseAddr("203.0.113.1"), vnet.PortRestrictedCone())
	nat.SetLink(vnet.Link{Latency: time.Millisecond})
	laptop, _ := nat.AddHost(netip.MustParseAddr("192.168.1.2"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := laptop.DialFrom(ctx, 5000, netip.MustParseAddrPort("198.51.100.1:443"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	reply, _ := io.ReadAll(conn)
	fmt.Println(string(reply))
	// Output:
	// you are 203.0.113.1:5000
}
