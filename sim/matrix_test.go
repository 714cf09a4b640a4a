package sim

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// quic-go warns once that a virtual socket has no receive buffer to enlarge.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	os.Exit(m.Run())
}

// The NAT matrix: every ordered pair of kinds (public host, the four classic NATs,
// a firewall, a NAT with a UPnP gateway, carrier-grade double NAT), with TCP, QUIC
// and both, runs the real nodes on the virtual network, and each cell connects
// exactly where Possible says a direct connection exists.
func TestMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res := Matrix{Seed: 1, Parallel: 6}.Run(ctx)
	t.Logf("\n%s", res.Table())
	if want := len(Kinds) * len(Kinds) * len(ProtocolSets); len(res.Cells) != want || len(res.Kinds) != len(Kinds) {
		t.Fatalf("%d cells of %d kinds, want %d of %d", len(res.Cells), len(res.Kinds), want, len(Kinds))
	}
	for _, c := range res.Unexpected() {
		t.Errorf("%s → %s over %s: possible=%v, got kind %q, %v %v", c.A, c.B, c.Protocols, c.Possible, c.Kind, c.Outcome.Err, c.Err)
	}
}
