package metrics

import (
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crust-p2p/crust"
)

// Source is what a Collector reads at each scrape; *crust.Service is one.
type Source interface {
	// Peers lists the connected peers with their kind and traffic counters.
	Peers() []crust.PeerInfo
	// LadderStats counts attempts per ladder step and successes per kind.
	LadderStats() map[string]crust.StepCount
	// Refused counts refusals by reason.
	Refused() map[string]uint64
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
		"Message payload bytes received (in) and sent (out); sessions that ended count as of the last scrape that saw them.", []string{"direction"}, nil)
	messagesDesc = prometheus.NewDesc("crust_messages_total",
		"Messages received (in) and sent (out); sessions that ended count as of the last scrape that saw them.", []string{"direction"}, nil)
	refusedDesc = prometheus.NewDesc("crust_refused_total",
		"Connections, messages and requests refused or held back, by reason.", []string{"reason"}, nil)
)

// Collector is a prometheus.Collector of one crust node's metrics (the package
// comment lists them). Its methods are safe for concurrent use.
type Collector struct {
	src   Source
	punch *prometheus.HistogramVec

	mu    sync.Mutex
	live  map[session]traffic // each session's counts at the last scrape
	ended traffic             // the sums of the last counts of the sessions that ended
}

// session is one connected period of a peer: a new one starts with fresh counters.
type session struct {
	id    crust.NodeID
	since int64 // PeerInfo.Since, in Unix nanoseconds
}

// traffic is a session's counters, as Peers reports them.
type traffic struct{ bytesIn, bytesOut, msgsIn, msgsOut uint64 }

func (t *traffic) add(o traffic) {
	t.bytesIn += o.bytesIn
	t.bytesOut += o.bytesOut
	t.msgsIn += o.msgsIn
	t.msgsOut += o.msgsOut
}

// atLeast returns t with each counter raised to o's: a session's counters never go
// back, and a scrape must not show them going back if they ever seemed to.
func (t traffic) atLeast(o traffic) traffic {
	return traffic{max(t.bytesIn, o.bytesIn), max(t.bytesOut, o.bytesOut), max(t.msgsIn, o.msgsIn), max(t.msgsOut, o.msgsOut)}
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of src's metrics; src is typically a *crust.Service.
// Traffic is counted from the first scrape on (see the package comment).
func New(src Source) *Collector {
	c := &Collector{
		src: src,
		punch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crust_punch_seconds",
			Help:    "How long the hole-punch step that made a connection ran (rendezvous exchange and punch), at the node that climbed the ladder.",
			Buckets: PunchBuckets,
		}, []string{"kind"}),
		live: make(map[session]traffic),
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
	for _, d := range []*prometheus.Desc{connectionsDesc, attemptsDesc, successesDesc, bytesDesc, messagesDesc, refusedDesc} {
		ch <- d
	}
	c.punch.Describe(ch)
}

// Collect reads the Source and sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	peers, t := c.peers()

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

	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.bytesIn), "in")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(t.bytesOut), "out")
	ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(t.msgsIn), "in")
	ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(t.msgsOut), "out")

	refused := c.src.Refused()
	for _, r := range sortedKeys(refused) {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(refused[r]), r)
	}

	c.punch.Collect(ch)
}

// peers lists the connected peers and returns the running traffic totals: the
// counts of their sessions plus the last counts seen of every session that ended. A
// session that is no longer listed has ended: its last counts move into ended. The
// list is read under the lock, so that concurrent scrapes see sessions in order.
func (c *Collector) peers() ([]crust.PeerInfo, traffic) {
	c.mu.Lock()
	defer c.mu.Unlock()
	peers := c.src.Peers()
	now := make(map[session]traffic, len(peers))
	total := traffic{}
	for _, p := range peers {
		s := session{id: p.ID, since: p.Since.UnixNano()}
		t := traffic{p.BytesIn, p.BytesOut, p.MsgsIn, p.MsgsOut}.atLeast(c.live[s])
		now[s] = t
		total.add(t)
	}
	for s, t := range c.live {
		if _, ok := now[s]; !ok {
			c.ended.add(t)
		}
	}
	c.live = now
	total.add(c.ended)
	return peers, total
}

// sortedKeys returns m's keys in order, so that metrics come out in a stable order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
