package sim

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// A small scale run: every connect the theory allows succeeds, every message
// arrives, every connected pair has exactly one connection, and the beacon connects
// every two hosts of a LAN.
func TestScaleSmall(t *testing.T) {
	nodes := 60
	if v, err := strconv.Atoi(os.Getenv("SIM_NODES")); err == nil {
		nodes = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// LANs of up to 12 and no symmetric NATs: under the race detector, on two
	// cores, a 50-host LAN's beacon mesh and the birthday punch's timing both fall
	// behind (the matrix covers symmetric NATs pair by pair).
	mix := map[string]float64{"public": 0.1, "full-cone": 0.2, "restricted": 0.2, "port-restricted": 0.3, "firewall": 0.2}
	rep, err := Scale{Nodes: nodes, LANMax: 12, Mix: mix, Seed: 1, Protocols: []string{"quic"}, Beacons: true, Log: os.Stderr}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if rep.Received != rep.Sent || len(rep.Duplicates) > 0 {
		t.Fatalf("messages %d/%d, duplicates %v", rep.Received, rep.Sent, rep.Duplicates)
	}
	if rep.Possible == 0 || rep.PossibleOK != rep.Possible {
		t.Errorf("%d of the %d connects the theory allows succeeded", rep.PossibleOK, rep.Possible)
	}
	if rep.LANPairs == 0 || rep.LANLinked != rep.LANPairs {
		t.Fatalf("the beacon connected %d of %d pairs of hosts that share a LAN", rep.LANLinked, rep.LANPairs)
	}
}
