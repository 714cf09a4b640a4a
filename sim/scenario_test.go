package sim

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust/sim/vnet"
)

// A traced pair reports its packets: the QUIC punch between two NATs shows A's and
// B's routers translating (outbound), letting in (inbound) and the hosts receiving.
func TestPairTrace(t *testing.T) {
	var mu sync.Mutex
	seen := map[vnet.EventKind]map[string]bool{}
	k, _ := KindByName("port-restricted")
	out, err := Pair{A: k, B: k, Protocols: []string{"quic"}, Seed: 1, Trace: func(e vnet.Event) {
		mu.Lock()
		defer mu.Unlock()
		if seen[e.Kind] == nil {
			seen[e.Kind] = map[string]bool{}
		}
		seen[e.Kind][e.Node] = true
	}}.Run(context.Background())
	if err != nil || out.Err != nil {
		t.Fatalf("pair: %v %v", err, out.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []struct {
		kind vnet.EventKind
		node string
	}{
		{vnet.EventOutbound, "nat " + siteAddrs[0].String()}, {vnet.EventInbound, "nat " + siteAddrs[1].String()},
		{vnet.EventDeliver, "host " + lanAddrs[1].String()}, {vnet.EventSend, "host " + lanAddrs[0].String()},
	} {
		if !seen[want.kind][want.node] {
			t.Errorf("no %q event at %s; seen: %v", want.kind, want.node, seen)
		}
	}
}

// Behind a UPnP gateway a node is reached on its mapped ports: TCP by the ladder's
// tcp-upnp step (from behind any NAT, a symmetric one too), QUIC directly.
func TestPairUPnP(t *testing.T) {
	upnp, _ := KindByName("upnp")
	for _, tc := range []struct {
		a         string
		protocols []string
		want      string
	}{
		{"public", []string{"tcp"}, "tcp-upnp"},
		{"symmetric", []string{"tcp"}, "tcp-upnp"},
		{"cgnat", []string{"quic"}, "quic-direct"},
	} {
		t.Run(tc.a+"/"+strings.Join(tc.protocols, "+"), func(t *testing.T) {
			t.Parallel()
			a, _ := KindByName(tc.a)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := Pair{A: a, B: upnp, Protocols: tc.protocols, Seed: 1}.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if out.Kind != tc.want {
				t.Fatalf("%s → upnp: kind %q (%v), want %q", tc.a, out.Kind, out.Err, tc.want)
			}
		})
	}
}
