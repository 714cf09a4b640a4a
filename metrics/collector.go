package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crust-p2p/crust"
)

// Source is what a Collector reads at each scrape; *crust.Service is one.
type Source interface {
	// Peers lists the connected peers with their kind.
	Peers() []crust.PeerInfo
	// Traffic counts messages and payload bytes since the node started.
	Traffic() crust.Traffic
	// LadderStats counts attempts per ladder step and successes per kind.
	LadderStats() map[string]crust.StepCount
	// Refused counts refusals by reason.
	Refused() map[string]uint64
	// Delivery counts resumed streams, resent messages and messages given back.
	Delivery() crust.Delivery
}

var _ Source = (*crust.Service)(nil)

// firewallPunch is the kind of a TCP punch that first opened our own firewall with
// a hop-limited SYN (crust has no constant for it: it is not a step of its own).
const firewallPunch = "firewall-punch"

// steps are the ladder steps, always exported (at zero until they run).
var steps = []string{crust.StepTCPDirect, crust.StepTCPUPnP, crust.StepTCPPunch, crust.StepQUICDirect, crust.StepQUICPunch}

// kinds are the connection kinds, always exported.
var kinds = []string{crust.StepTCPDirect, crust.StepTCPUPnP, crust.StepTCPPunch, firewallPunch, crust.StepQUICDirect, crust.StepQUICPunch}

// punchKinds are the kinds a hole punch makes: crust_punch_seconds's labels.
var punchKinds = []string{crust.StepTCPPunch, firewallPunch, crust.StepQUICPunch}

// PunchBuckets are crust_punch_seconds's buckets, in seconds: a punch on a LAN takes
// milliseconds, one across the world a few round trips, and a ladder step gives up
// after StepTimeout (5 s by default).
var PunchBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

var (
	connectionsDesc = prometheus.NewDesc("crust_connections",
		"Connected peers, by how the live connection was made.", []string{"kind"}, nil)
	attemptsDesc = prometheus.NewDesc("crust_ladder_attempts_total",
		"Runs of each step of the connection ladder (skipped steps not counted; a punch's responder side included).", []string{"step"}, nil)
	successesDesc = prometheus.NewDesc("crust_ladder_successes_total",
		"Peer sessions started by each kind of connection, inbound ones included.", []string{"kind"}, nil)
	bytesDesc = prometheus.NewDesc("crust_bytes_total",
		"Message payload bytes received (in) and sent (out) since the node started.", []string{"direction"}, nil)
	messagesDesc = prometheus.NewDesc("crust_messages_total",
		"Messages received (in) and sent (out) since the node started.", []string{"direction"}, nil)
	refusedDesc = prometheus.NewDesc("crust_refused_total",
		"Connections, messages and requests refused or held back, by reason.", []string{"reason"}, nil)
	resumedDesc = prometheus.NewDesc("crust_resumed_sessions_total",
		"Sessions that went on with a stream of messages a fault had interrupted.", nil, nil)
	resentDesc = prometheus.NewDesc("crust_resent_messages_total",
		"Messages held through a fault and written again when the stream resumed.", nil, nil)
	undeliveredDesc = prometheus.NewDesc("crust_undelivered_messages_total",
		"Messages given back to the application in Undelivered events, by kind (unacknowledged: written, maybe arrived; unsent).", []string{"kind"}, nil)
)

// Collector is a prometheus.Collector of one crust node's metrics (the package
// comment lists them). Its methods are safe for concurrent use.
type Collector struct {
	src   Source
	punch *prometheus.HistogramVec
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of src's metrics; src is typically a *crust.Service.
func New(src Source) *Collector {
	c := &Collector{
		src: src,
		punch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crust_punch_seconds",
			Help:    "How long the hole-punch step that made a connection ran (rendezvous exchange and punch), at the node that climbed the ladder.",
			Buckets: PunchBuckets,
		}, []string{"kind"}),
	}
	for _, k := range punchKinds {
		c.punch.WithLabelValues(k) // exported at zero from the start
	}
	return c
}

// Observe takes an event the application read from Service.Events: a PeerConnected
// made by a hole punch that this node ran adds the punch step's duration to
// crust_punch_seconds. Other events are ignored, so every event may be passed.
func (c *Collector) Observe(ev crust.Event) {
	pc, ok := ev.(crust.PeerConnected)
	if !ok || pc.Took <= 0 || !isPunch(pc.Kind) {
		return
	}
	c.punch.WithLabelValues(pc.Kind).Observe(pc.Took.Seconds())
}

func isPunch(kind string) bool { return slices.Contains(punchKinds, kind) }

// Describe sends the descriptions of every metric of the Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectionsDesc, attemptsDesc, successesDesc, bytesDesc, messagesDesc, refusedDesc, resumedDesc, resentDesc, undeliveredDesc} {
		ch <- d
	}
	c.punch.Describe(ch)
}

// Collect reads the Source and sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	peers := c.src.Peers()

	byKind := make(map[string]int, len(kinds))
	for _, k := range kinds {
		byKind[k] = 0
	}
	for _, p := range peers {
		byKind[p.Kind]++
	}
	for _, k := range sortedKeys(byKind) {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(byKind[k]), k)
	}

	attempts := make(map[string]uint64, len(steps))
	successes := make(map[string]uint64, len(kinds))
	for _, s := range steps {
		attempts[s] = 0
	}
	for _, k := range kinds {
		successes[k] = 0
	}
	for name, n := range c.src.LadderStats() {
		if _, ok := attempts[name]; ok || n.Attempts > 0 {
			attempts[name] = n.Attempts
		}
		if _, ok := successes[name]; ok || n.Successes > 0 {
			successes[name] = n.Successes
		}
	}
	for _, s := range sortedKeys(attempts) {
		ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.CounterValue, float64(attempts[s]), s)
	}
	for _, k := range sortedKeys(successes) {
		ch <- prometheus.MustNewConstMetric(successesDesc, prometheus.CounterValue, float64(successes[k]), k)
	}

	t := c.src.Traffic()
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.BytesOut), "out")
	ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(t.MsgsIn), "in")
	ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(t.MsgsOut), "out")

	refused := c.src.Refused()
	for _, r := range sortedKeys(refused) {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(refused[r]), r)
	}

	d := c.src.Delivery()
	ch <- prometheus.MustNewConstMetric(resumedDesc, prometheus.CounterValue, float64(d.Resumed))
	ch <- prometheus.MustNewConstMetric(resentDesc, prometheus.CounterValue, float64(d.Resent))
	ch <- prometheus.MustNewConstMetric(undeliveredDesc, prometheus.CounterValue, float64(d.Unacknowledged), "unacknowledged")
	ch <- prometheus.MustNewConstMetric(undeliveredDesc, prometheus.CounterValue, float64(d.Unsent), "unsent")

	c.punch.Collect(ch)
}

// sortedKeys returns m's keys in order, so that metrics come out in a stable order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
