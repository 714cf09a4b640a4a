package crust_test

import (
	"slices"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/nat/stun/stuntest"
)

// With STUN servers, the node asks them over UDP from its QUIC socket: the NAT info
// and the Contact carry the external endpoint, and on loopback nothing translates it.
func TestServiceSTUN(t *testing.T) {
	checkLeaks(t)
	srv := stuntest.New(t, stuntest.Config{})
	cfg := fastConfig()
	cfg.Protocols = []string{"quic"}
	cfg.StunServers = []string{srv.UDPAddr().String()}
	a := newNode(t, cfg, nil)
	deadline := time.Now().Add(10 * time.Second)
	var info crust.NATInfo
	for info = a.NAT(); info.Checked.IsZero(); info = a.NAT() {
		if time.Now().After(deadline) {
			t.Fatal("no STUN check within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	quic := a.Endpoints()[0]
	if info.Behavior != "no-nat" || len(info.STUN) != 1 || info.STUN[0] != quic || len(info.Errors) != 0 {
		t.Fatalf("NAT info %+v, want no-nat and %v", info, quic)
	}
	if !slices.Contains(a.Contact().Reflected, quic) {
		t.Fatalf("contact %v lacks the STUN endpoint %v", a.Contact(), quic)
	}
	// The QUIC socket still serves QUIC beside STUN.
	b := newNode(t, fastConfig(), nil)
	connect(t, b, a)
}
