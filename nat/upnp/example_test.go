package upnp_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/crust-p2p/crust/nat/upnp"
)

// Keep the node's TCP and UDP listen ports mapped on the router, and delete the
// mappings at shutdown.
func ExampleMapper() {
	cfg := upnp.Config{
		// miniupnpd's description URL; leave RootURL empty to search the LAN.
		RootURL:     "http://192.168.1.1:2189/rootDesc.xml",
		Description: "crust 3f9a1c",
	}
	want := []upnp.Wanted{
		{Proto: "tcp", Internal: netip.MustParseAddrPort("0.0.0.0:7000")},
		{Proto: "udp", Internal: netip.MustParseAddrPort("0.0.0.0:7000")},
	}
	m, err := upnp.NewMapper(cfg, want, func(ms []upnp.Mapping) {
		for _, mapping := range ms {
			fmt.Printf("peers can reach our %s %v at %v\n", mapping.Proto, mapping.Internal, mapping.External)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	// … run the node; then, at shutdown:
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		log.Print(err)
	}
	stop()
	<-done
}

// Read the router's external address once.
func ExampleDiscover() {
	g, err := upnp.Discover(context.Background(), upnp.Config{})
	if err != nil {
		log.Fatal(err) // says to enable UPnP on the router if none answered
	}
	ip, err := g.ExternalIP(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("external address:", ip, "via", g)
}
