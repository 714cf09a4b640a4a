package metrics_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/metrics"
)

// fakeSource is a Source the test sets by hand.
type fakeSource struct {
	mu      sync.Mutex
	peers   []crust.PeerInfo
	traffic crust.Traffic
	ladder  map[string]crust.StepCount
	refused map[string]uint64
	deliv   crust.Delivery
}

func (f *fakeSource) Peers() []crust.PeerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]crust.PeerInfo(nil), f.peers...)
}

func (f *fakeSource) Traffic() crust.Traffic {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.traffic
}

func (f *fakeSource) LadderStats() map[string]crust.StepCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ladder
}

func (f *fakeSource) Refused() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fakeSource) Delivery() crust.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deliv
}

func (f *fakeSource) set(peers ...crust.PeerInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = peers
}

func (f *fakeSource) setTraffic(t crust.Traffic) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traffic = t
}

// nodeID returns a NodeID made of the byte b.
func nodeID(b byte) crust.NodeID {
	var id crust.NodeID
	for i := range id {
		id[i] = b
	}
	return id
}

var t0 = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

// peer is a peer connected since t0 by a connection of kind.
func peer(id byte, kind string) crust.PeerInfo {
	return crust.PeerInfo{ID: nodeID(id), Since: t0, Kind: kind}
}

// trafficText is the expected exposition of the traffic counters.
func trafficText(bytesIn, bytesOut, msgsIn, msgsOut uint64) string {
	f := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return strings.NewReplacer("BI", f(bytesIn), "BO", f(bytesOut), "MI", f(msgsIn), "MO", f(msgsOut)).Replace(`
# HELP crust_bytes_total Message payload bytes received (in) and sent (out) since the node started.
# TYPE crust_bytes_total counter
crust_bytes_total{direction="in"} BI
crust_bytes_total{direction="out"} BO
# HELP crust_messages_total Messages received (in) and sent (out) since the node started.
# TYPE crust_messages_total counter
crust_messages_total{direction="in"} MI
crust_messages_total{direction="out"} MO
`)
}

// The traffic counters are the Source's Traffic as it is, whoever is connected: a
// per-peer count in Peers (here made up, and far from the totals) plays no part.
func TestTrafficFromSource(t *testing.T) {
	src := &fakeSource{}
	c := metrics.New(src)
	steps := []struct {
		name    string
		peers   []crust.PeerInfo
		traffic crust.Traffic
	}{
		{"nothing yet", nil, crust.Traffic{}},
		{"A connected", []crust.PeerInfo{withTraffic(peer(1, "tcp-direct"), 10, 20, 1, 2)}, crust.Traffic{BytesIn: 10, BytesOut: 20, MsgsIn: 1, MsgsOut: 2}},
		{"A gone, after more traffic", nil, crust.Traffic{BytesIn: 15, BytesOut: 32, MsgsIn: 2, MsgsOut: 4}},
		{"A back, counting from zero", []crust.PeerInfo{withTraffic(peer(1, "tcp-direct"), 1, 0, 1, 0)}, crust.Traffic{BytesIn: 16, BytesOut: 32, MsgsIn: 3, MsgsOut: 4}},
	}
	for _, s := range steps {
		src.set(s.peers...)
		src.setTraffic(s.traffic)
		tr := s.traffic
		want := trafficText(tr.BytesIn, tr.BytesOut, tr.MsgsIn, tr.MsgsOut)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "crust_bytes_total", "crust_messages_total"); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
}

// withTraffic returns p with its session's counters set.
func withTraffic(p crust.PeerInfo, bytesIn, bytesOut, msgsIn, msgsOut uint64) crust.PeerInfo {
	p.BytesIn, p.BytesOut, p.MsgsIn, p.MsgsOut = bytesIn, bytesOut, msgsIn, msgsOut
	return p
}

// Connections by kind, ladder counters and refusals come from the Source as they
// are; every known kind and step is exported, at zero if need be.
func TestCollectorCounts(t *testing.T) {
	src := &fakeSource{
		ladder: map[string]crust.StepCount{
			"tcp-direct":     {Attempts: 4, Successes: 3},
			"tcp-punch":      {Attempts: 2},
			"firewall-punch": {Successes: 1},
			"quic-punch":     {Attempts: 1, Successes: 1},
		},
		refused: map[string]uint64{"blacklist": 2, "source-rate": 7},
	}
	src.set(peer(1, "tcp-direct"), peer(2, "tcp-direct"), peer(3, "quic-punch"))
	want := `
# HELP crust_connections Connected peers, by how the live connection was made.
# TYPE crust_connections gauge
crust_connections{kind="firewall-punch"} 0
crust_connections{kind="quic-direct"} 0
crust_connections{kind="quic-punch"} 1
crust_connections{kind="tcp-direct"} 2
crust_connections{kind="tcp-punch"} 0
crust_connections{kind="tcp-upnp"} 0
# HELP crust_ladder_attempts_total Runs of each step of the connection ladder (skipped steps not counted; a punch's responder side included).
# TYPE crust_ladder_attempts_total counter
crust_ladder_attempts_total{step="quic-direct"} 0
crust_ladder_attempts_total{step="quic-punch"} 1
crust_ladder_attempts_total{step="tcp-direct"} 4
crust_ladder_attempts_total{step="tcp-punch"} 2
crust_ladder_attempts_total{step="tcp-upnp"} 0
# HELP crust_ladder_successes_total Peer sessions started by each kind of connection, inbound ones included.
# TYPE crust_ladder_successes_total counter
crust_ladder_successes_total{kind="firewall-punch"} 1
crust_ladder_successes_total{kind="quic-direct"} 0
crust_ladder_successes_total{kind="quic-punch"} 1
crust_ladder_successes_total{kind="tcp-direct"} 3
crust_ladder_successes_total{kind="tcp-punch"} 0
crust_ladder_successes_total{kind="tcp-upnp"} 0
# HELP crust_refused_total Connections, messages and requests refused or held back, by reason.
# TYPE crust_refused_total counter
crust_refused_total{reason="blacklist"} 2
crust_refused_total{reason="source-rate"} 7
`
	names := []string{"crust_connections", "crust_ladder_attempts_total", "crust_ladder_successes_total", "crust_refused_total"}
	if err := testutil.CollectAndCompare(metrics.New(src), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// Observe records the winning step's duration of punched connections this node
// climbed to, and nothing else.
func TestObservePunch(t *testing.T) {
	col := metrics.New(&fakeSource{})
	for _, ev := range []crust.Event{
		crust.PeerConnected{Kind: "tcp-punch", Took: 30 * time.Millisecond},
		crust.PeerConnected{Kind: "quic-punch", Took: 2 * time.Second},
		crust.PeerConnected{Kind: "quic-punch", Took: 200 * time.Millisecond},
		crust.PeerConnected{Kind: "tcp-punch"},                                   // the responder's side: no step ran here
		crust.PeerConnected{Kind: "tcp-direct", Took: 5 * time.Millisecond},      // not a punch
		crust.PeerLost{Reason: "gone"},                                           // not a connection
		crust.Message{Data: []byte("x")},                                         // not a connection
		crust.PeerConnected{Kind: "firewall-punch", Took: 50 * time.Millisecond}, // a TCP punch, firewall opened
	} {
		col.Observe(ev)
	}
	got := punchCounts(t, col)
	want := map[string]punchCount{
		"tcp-punch":      {1, 0.03},
		"quic-punch":     {2, 2.2},
		"firewall-punch": {1, 0.05},
	}
	for kind, w := range want {
		if g := got[kind]; g.n != w.n || !near(g.sum, w.sum) {
			t.Errorf("crust_punch_seconds{kind=%q}: %d observations, sum %v; want %d, %v", kind, g.n, g.sum, w.n, w.sum)
		}
	}
	if len(got) != len(want) {
		t.Errorf("crust_punch_seconds has kinds %v, want %v", got, want)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

type punchCount struct {
	n   uint64
	sum float64
}

// punchCounts gathers crust_punch_seconds from c: observations and their sum, by kind.
func punchCounts(t *testing.T, c prometheus.Collector) map[string]punchCount {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]punchCount{}
	for _, f := range families {
		if f.GetName() != "crust_punch_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = punchCount{m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()}
				}
			}
		}
	}
	return out
}

// The Collector describes what it collects (a pedantic registry checks), and its
// metrics pass Prometheus's lint.
func TestCollectorConsistent(t *testing.T) {
	src := &fakeSource{refused: map[string]uint64{"peer-rate": 1}}
	src.set(peer(1, "tcp-upnp"))
	src.setTraffic(crust.Traffic{BytesIn: 1, BytesOut: 2, MsgsIn: 3, MsgsOut: 4})
	col := metrics.New(src)
	col.Observe(crust.PeerConnected{Kind: "tcp-punch", Took: time.Second})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(col); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// The delivery counters are the Source's Delivery as it is.
func TestDeliveryFromSource(t *testing.T) {
	src := &fakeSource{deliv: crust.Delivery{Resumed: 2, Resent: 4076, Unacknowledged: 13, Unsent: 7}}
	want := `
# HELP crust_resumed_sessions_total Sessions that went on with a stream of messages a fault had interrupted.
# TYPE crust_resumed_sessions_total counter
crust_resumed_sessions_total 2
# HELP crust_resent_messages_total Messages held through a fault and written again when the stream resumed.
# TYPE crust_resent_messages_total counter
crust_resent_messages_total 4076
# HELP crust_undelivered_messages_total Messages given back to the application in Undelivered events, by kind (unacknowledged: written, maybe arrived; unsent).
# TYPE crust_undelivered_messages_total counter
crust_undelivered_messages_total{kind="unacknowledged"} 13
crust_undelivered_messages_total{kind="unsent"} 7
`
	if err := testutil.CollectAndCompare(metrics.New(src), strings.NewReader(want), "crust_resumed_sessions_total", "crust_resent_messages_total", "crust_undelivered_messages_total"); err != nil {
		t.Fatal(err)
	}
}
