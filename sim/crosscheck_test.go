package sim

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The simulator's verdicts agree with the real testbed's (make test-nat) for the
// kinds the testbed has: iptables MASQUERADE is a port-restricted cone here
// (endpoint-independent, port-preserving mapping; conntrack filters on address and
// port), MASQUERADE --random-fully is the symmetric kind, and the firewall router is
// the firewall kind; the router running miniupnpd is the upnp kind. Each row names
// the testbed test that shows the same outcome on real kernel NAT.
func TestCrossCheckWithTestbed(t *testing.T) {
	public, _ := KindByName("public")
	cone, _ := KindByName("port-restricted")
	symmetric, _ := KindByName("symmetric")
	firewall, _ := KindByName("firewall")
	upnp, _ := KindByName("upnp")
	for _, tc := range []struct {
		testbed   string
		a, b      Kind
		protocols []string
		want      string // the connection's kind; "" for no direct connection
	}{
		{"TestHolePunchBetweenNATs/tcp+quic", cone, cone, []string{"tcp", "quic"}, "tcp-punch"},
		{"TestHolePunchBetweenNATs/quic", cone, cone, []string{"quic"}, "quic-punch"},
		{"TestHolePunchSymmetric/tcp", symmetric, cone, []string{"tcp"}, ""},
		{"TestHolePunchSymmetric/tcp+quic", symmetric, cone, []string{"tcp", "quic"}, "quic-punch"},
		{"TestHolePunchBirthday", symmetric, cone, []string{"quic"}, "quic-punch"},
		{"TestFirewallPunchCrust/IPv4", cone, firewall, []string{"tcp"}, "firewall-punch"},
		{"TestUPnPWithMiniupnpd", public, upnp, []string{"tcp", "quic"}, "tcp-upnp"},
	} {
		t.Run(tc.testbed, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := Pair{A: tc.a, B: tc.b, Protocols: tc.protocols, Seed: 1}.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if out.Kind != tc.want {
				t.Fatalf("%s → %s over %s: kind %q (%v), the testbed's %s gets %q",
					tc.a.Name, tc.b.Name, strings.Join(tc.protocols, "+"), out.Kind, out.Err, tc.testbed, tc.want)
			}
		})
	}
}
