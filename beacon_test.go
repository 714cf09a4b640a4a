package crust_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// freeUDPPort returns a UDP port number nothing on loopback uses right now.
func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// Five nodes on one host share a beacon port and broadcast on loopback only
// (127.255.255.255). With no contact given, they find each other by beacon alone and
// end in a full mesh: 10 connections, one per pair, made by tcp-direct.
func TestBeaconDiscoveryFullMesh(t *testing.T) {
	checkLeaks(t)
	port := freeUDPPort(t)
	const size = 5
	nodes := make([]*testNode, size)
	for i := range nodes {
		cfg := fastConfig()
		cfg.BeaconAddrs = []netip.Addr{netip.MustParseAddr("127.255.255.255")}
		cfg.BeaconPort = port
		nodes[i] = newNode(t, cfg, nil)
	}
	type link struct{ local, remote string }
	seen := map[link]bool{}
	for i, n := range nodes {
		for _, o := range nodes[i+1:] {
			n.waitUntil(10*time.Second, "a beacon peer", func() bool { return n.connected[o.ID()] >= 1 })
			pn, _ := waitSettled(t, n, o)
			if pn.Kind != crust.StepTCPDirect {
				t.Errorf("beacon peer connected via %s, want tcp-direct", pn.Kind)
			}
			seen[link{pn.LocalAddr.String(), pn.Addr.String()}] = true
		}
	}
	if len(seen) != size*(size-1)/2 {
		t.Errorf("%d distinct connections, want %d", len(seen), size*(size-1)/2)
	}
	for _, n := range nodes {
		if got := len(n.Peers()); got != size-1 {
			t.Errorf("%s lists %d peers, want %d", n.ID().Short(), got, size-1)
		}
	}
}
