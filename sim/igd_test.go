package sim

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/nat/upnp"
	"github.com/crust-p2p/crust/sim/vnet"
)

// crust's UPnP client (package upnp, as the nodes run it) finds the gateway by its
// root URL over the virtual LAN, reads the external address, maps, reads and deletes
// ports, and the router forwards what the gateway mapped. As miniupnpd's secure mode,
// the gateway refuses to map to or delete for another address, and a port another
// client holds is a conflict that the Mapper gets around with AddAnyPortMapping.
// Closing the gateway leaves no goroutine behind.
func TestIGD(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := vnet.New(vnet.Config{})
	wan := netip.MustParseAddr("198.51.100.1")
	r, err := n.AddNAT(wan, vnet.PortRestrictedCone())
	if err != nil {
		t.Fatal(err)
	}
	host := func(addr string) *vnet.Host {
		h, err := r.AddHost(netip.MustParseAddr(addr))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	g, err := StartIGD(host("192.168.1.1"), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://192.168.1.1:2189/rootDesc.xml"; g.RootURL() != want {
		t.Fatalf("RootURL() = %q, want %q", g.RootURL(), want)
	}
	a, b := host("192.168.1.10"), host("192.168.1.11")
	config := func(h *vnet.Host) upnp.Config {
		return upnp.Config{RootURL: g.RootURL(), HTTPClient: &http.Client{
			Transport: &http.Transport{DialContext: Net{Host: h}.Dial, DisableKeepAlives: true},
		}}
	}
	gwA, err := upnp.Discover(ctx, config(a))
	if err != nil {
		t.Fatal(err)
	}
	gwB, err := upnp.Discover(ctx, config(b))
	if err != nil {
		t.Fatal(err)
	}
	if gwA.ServiceType() != upnp.ServiceWANIPConnection2 || gwA.LocalAddr() != a.Addr() {
		t.Fatalf("gateway %v, our address %v; want WANIPConnection:2 seeing %v", gwA, gwA.LocalAddr(), a.Addr())
	}
	if ip, err := gwA.ExternalIP(ctx); err != nil || ip != wan {
		t.Fatalf("ExternalIP() = %v, %v; want %v", ip, err, wan)
	}

	inA := netip.AddrPortFrom(a.Addr(), 4000)
	if err := gwA.AddMapping(ctx, "tcp", inA, 4000, time.Hour, "crust test"); err != nil {
		t.Fatal(err)
	}
	if pm, ok := r.PortMapping("tcp", 4000); !ok || pm.Internal != inA {
		t.Fatalf("the router's mapping of TCP 4000: %v, %v; want one to %v", pm, ok, inA)
	}
	if got, ok, err := gwA.GetMapping(ctx, "tcp", 4000); err != nil || !ok || got != inA {
		t.Fatalf("GetMapping(tcp 4000) = %v, %v, %v; want %v", got, ok, err, inA)
	}

	inB := netip.AddrPortFrom(b.Addr(), 4000)
	if err := gwB.AddMapping(ctx, "tcp", inB, 4000, time.Hour, ""); !errors.Is(err, upnp.ErrConflict) {
		t.Fatalf("mapping a's port to b: %v, want ErrConflict", err)
	}
	var refused *upnp.ActionError
	if err := gwB.AddMapping(ctx, "tcp", netip.AddrPortFrom(a.Addr(), 4001), 4001, time.Hour, ""); !errors.As(err, &refused) || refused.Code != 606 {
		t.Fatalf("b mapping a port to a: %v, want UPnP error 606", err)
	}
	if err := gwB.DeleteMapping(ctx, "tcp", 4000); !errors.As(err, &refused) || refused.Code != 606 {
		t.Fatalf("b deleting a's mapping: %v, want UPnP error 606", err)
	}

	// b's Mapper meets the conflict and takes the port the gateway offers.
	m, err := upnp.NewMapper(config(b), []upnp.Wanted{{Proto: "tcp", Internal: inB}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(ctx)
	}()
	for len(m.Mappings()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("b's Mapper mapped nothing")
		case <-time.After(10 * time.Millisecond):
		}
	}
	got := m.Mappings()[0]
	if got.External.Port() == 4000 || got.External.Addr() != wan || got.Internal != inB {
		t.Fatalf("b's mapping %+v, want %v on another port of %v", got, inB, wan)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-ran
	if _, ok := r.PortMapping("tcp", got.External.Port()); ok {
		t.Fatal("the Mapper's Close left its mapping on the router")
	}

	if err := gwA.DeleteMapping(ctx, "tcp", 4000); err != nil {
		t.Fatal(err)
	}
	if pms := r.PortMappings(); len(pms) != 0 {
		t.Fatalf("the router still has %v", pms)
	}
	if _, ok, err := gwA.GetMapping(ctx, "tcp", 4000); ok || err != nil {
		t.Fatalf("GetMapping of a deleted port: %v, %v; want none", ok, err)
	}

	g.Close()
	g.Close()
	if _, err := gwA.ExternalIP(ctx); err == nil {
		t.Fatal("the gateway answers after Close")
	}
	goleak.VerifyNone(t, leaks)
}
