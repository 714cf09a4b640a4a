package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/sim/vnet"
)

// Scale is a network of many nodes: a few public bootstrap nodes (also the
// rendezvous), and LANs of 5 to 50 hosts behind routers of a realistic mix of kinds;
// every node asks for Peers random others, then sends each peer it reached one
// message.
type Scale struct {
	// Nodes is how many nodes besides the bootstrap ones. Default: 1,000.
	Nodes int
	// Bootstrap is how many public bootstrap nodes. Default: 3.
	Bootstrap int
	// Peers is how many random peers each node asks for. Default: 8.
	Peers int
	// Mix weighs the kinds of site a LAN sits behind. Default: DefaultMix.
	Mix map[string]float64
	// LANMin and LANMax bound the hosts per LAN. Default: 5 and 50.
	LANMin, LANMax int
	// Protocols of every node. Default: TCP and QUIC.
	Protocols []string
	// Seed makes the layout, the NAT ports and the peer choices repeatable.
	Seed uint64
	// Parallel bounds the starts and connects in flight at once. Default: 64.
	Parallel int
	// StepTimeout bounds each ladder step. Default: 10 s: hundreds of nodes share
	// two cores here, so handshakes and rendezvous answers come late; at 5 s, 300
	// nodes with beacon LANs lost a sixth of the symmetric initiators' connects to
	// timeouts, at 10 s 1% of the possible ones failed.
	StepTimeout time.Duration
	// Log receives progress lines. Default: none.
	Log io.Writer
	// Beacons runs the LAN beacon on every host behind a router (NAT or firewall):
	// hosts of a LAN find each other and connect, as crust nodes do.
	Beacons bool
	// AfterConnects, if set, is called once every connect has ended and before the
	// message exchange, while every node is still up (e.g. to take a heap profile).
	AfterConnects func()
}

// DefaultMix is the scale run's mix of sites: mostly endpoint-independent home
// NATs, a fifth symmetric (mobile and carrier networks), a few public hosts and
// firewalls.
var DefaultMix = map[string]float64{
	"public": 0.05, "full-cone": 0.10, "restricted": 0.10, "port-restricted": 0.45,
	"symmetric": 0.20, "firewall": 0.10,
}

// ScaleReport is what a scale run measured.
type ScaleReport struct {
	Nodes, LANs int
	// Setup is the time to start every node and see it ready (STUN asked, a
	// bootstrap node connected); Connect the time for every node's connects.
	Setup, Connect, Wall time.Duration
	// ByPair counts connects by the kinds of the two sites ("port-restricted →
	// symmetric"), each with how many succeeded; LANs count as "same-lan".
	ByPair map[string]*PairCount
	// Possible counts the connects the theory (Possible) says can succeed: between
	// two kinds of site it allows, or within a LAN; PossibleOK how many of them did.
	Possible, PossibleOK int
	// ByStep counts successful connects by the step that made them; Took their times.
	ByStep map[string]int
	Took   []time.Duration
	// Sent and Received count the messages of the final exchange.
	Sent, Received int64
	// LANPairs is how many pairs of hosts share a LAN behind a router, LANLinked
	// how many of them ended connected (with Beacons, all should).
	LANPairs, LANLinked int
	// Duplicates lists pairs with more than one connection at the end (the
	// one-connection-per-pair rule broken); Checked is how many pairs were checked.
	Duplicates []string
	Checked    int
	// Failures are the first connects that failed, with their errors.
	Failures []string
	// Causes counts failed connects by kind of pair and the last step's error with
	// addresses, IDs and numbers blanked ("symmetric → port-restricted: quic-punch:
	// timed out after #s: …"), to see which failures dominate.
	Causes map[string]int
	// Net is the virtual network's packet counts at the end.
	Net vnet.Stats
}

// PairCount counts connects between two kinds of site.
type PairCount struct{ Tried, OK int }

// simNode is one node of the scale run.
type simNode struct {
	svc  *crust.Service
	kind Kind
	lan  int
}

func (s *Scale) defaults() {
	if s.Nodes <= 0 {
		s.Nodes = 1000
	}
	if s.Bootstrap <= 0 {
		s.Bootstrap = 3
	}
	if s.Peers <= 0 {
		s.Peers = 8
	}
	if s.Mix == nil {
		s.Mix = DefaultMix
	}
	if s.LANMin <= 0 {
		s.LANMin = 5
	}
	if s.LANMax < s.LANMin {
		s.LANMax = max(50, s.LANMin)
	}
	if len(s.Protocols) == 0 {
		s.Protocols = []string{"tcp", "quic"}
	}
	if s.Parallel <= 0 {
		s.Parallel = 64
	}
	if s.StepTimeout <= 0 {
		s.StepTimeout = 10 * time.Second
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
}

// Run builds the network, runs the scenario and closes everything.
func (s Scale) Run(ctx context.Context) (*ScaleReport, error) {
	s.defaults()
	begin := time.Now()
	rng := rand.New(rand.NewPCG(s.Seed, 0x5ca1e))
	rep := &ScaleReport{ByPair: map[string]*PairCount{}, ByStep: map[string]int{}, Causes: map[string]int{}}
	w, err := newWorld(vnet.Config{Seed: s.Seed, QueueLen: 256}, vnet.Link{Latency: time.Millisecond},
		s.Protocols, s.StepTimeout, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	defer w.close()
	got := make(chan struct{}, 1) // a message arrived
	w.onMessage = func(crust.Message) {
		atomic.AddInt64(&rep.Received, 1)
		select {
		case got <- struct{}{}:
		default:
		}
	}
	var all []*simNode
	defer func() {
		var wg sync.WaitGroup
		for _, n := range all {
			wg.Go(func() { n.svc.Close() })
		}
		wg.Wait()
	}()
	var boot []crust.Contact
	var bootIDs []crust.NodeID
	for i := range s.Bootstrap {
		h, err := w.host(netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}))
		if err != nil {
			return nil, err
		}
		svc, err := w.start(h, h.Addr().String(), nodeOpts{})
		if err != nil {
			return nil, err
		}
		all = append(all, &simNode{svc: svc, kind: Kind{Name: "bootstrap"}, lan: -1})
		boot = append(boot, svc.Contact())
		bootIDs = append(bootIDs, svc.ID())
	}

	// The sites: LANs behind routers (a public "LAN" is hosts on the internet).
	kinds, weights := mixOf(s.Mix)
	var nodes []*simNode
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.Parallel)
	for lan := 0; len(nodes) < s.Nodes; lan++ {
		kind := pick(rng, kinds, weights)
		size := min(s.LANMin+rng.IntN(s.LANMax-s.LANMin+1), s.Nodes-len(nodes))
		// Site lan's internet address: 100.0.0.0/8 is carrier-grade NAT space,
		// which crust treats as private; 11.0.0.0/8 stands in for the internet here.
		wan := netip.AddrFrom4([4]byte{11, byte(lan >> 8), byte(lan), 1})
		st, err := w.site(kind, wan, netip.MustParseAddr("192.168.0.2"), size)
		if err != nil {
			return nil, err
		}
		rep.LANs++
		opts := nodeOpts{contacts: boot, beacon: s.Beacons && kind.NAT != nil, gateway: st.gateway}
		for _, h := range st.hosts {
			n := &simNode{kind: kind, lan: lan}
			nodes = append(nodes, n)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				svc, err := w.start(h, h.Addr().String(), opts)
				if err == nil {
					rctx, cancel := context.WithTimeout(ctx, time.Minute)
					err = ready(rctx, svc, kind.UPnP, bootIDs...)
					cancel()
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					if svc != nil {
						svc.Close()
					}
					return
				}
				n.svc = svc
				all = append(all, n)
			})
		}
	}
	wg.Wait()
	rep.Nodes = len(nodes)
	rep.Setup = time.Since(begin)
	fmt.Fprintf(s.Log, "sim: %d nodes in %d LANs up in %v (%d failed to start)\n", len(nodes), rep.LANs, rep.Setup.Round(time.Millisecond), len(errs))
	if len(errs) > 0 {
		return rep, fmt.Errorf("sim: %d nodes did not start; first: %w", len(errs), errs[0])
	}

	// Every node asks for Peers random others.
	type attempt struct {
		a, b *simNode
		kind string
		took time.Duration
		err  error
	}
	var attempts []*attempt
	for i, a := range nodes {
		seen := map[int]bool{i: true}
		for len(seen) <= min(s.Peers, len(nodes)-1) {
			j := rng.IntN(len(nodes))
			if seen[j] {
				continue
			}
			seen[j] = true
			attempts = append(attempts, &attempt{a: a, b: nodes[j]})
		}
	}
	connectStart := time.Now()
	for _, at := range attempts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t0 := time.Now()
			at.err = at.a.svc.Connect(cctx, at.b.svc.Contact())
			at.took = time.Since(t0)
			if at.err == nil {
				at.kind = peerKind(at.a.svc, at.b.svc.ID())
			}
		})
	}
	wg.Wait()
	rep.Connect = time.Since(connectStart)
	for _, at := range attempts {
		key := at.a.kind.Name + " → " + at.b.kind.Name
		if at.a.lan == at.b.lan {
			key = "same-lan"
		}
		pc := rep.ByPair[key]
		if pc == nil {
			pc = &PairCount{}
			rep.ByPair[key] = pc
		}
		pc.Tried++
		possible := at.a.lan == at.b.lan || Possible(at.a.kind, at.b.kind, s.Protocols)
		if possible {
			rep.Possible++
		}
		if at.err == nil {
			pc.OK++
			if possible {
				rep.PossibleOK++
			}
			rep.ByStep[at.kind]++
			rep.Took = append(rep.Took, at.took)
		} else {
			rep.Causes[key+": "+cause(at.err)]++
			if len(rep.Failures) < 10 {
				rep.Failures = append(rep.Failures, fmt.Sprintf("%s (%s → %s): %v", key, at.a.svc.ID().Short(), at.b.svc.ID().Short(), at.err))
			}
		}
	}
	slices.Sort(rep.Took)
	fmt.Fprintf(s.Log, "sim: %d connects in %v\n", len(attempts), rep.Connect.Round(time.Millisecond))
	if s.AfterConnects != nil {
		s.AfterConnects()
	}

	// With beacons, every two hosts of a LAN end up connected: wait for that (a LAN
	// of 50 hears 49 nodes at once, reported 20 a second), up to lanWait.
	if s.Beacons {
		rep.LANPairs, rep.LANLinked = lanLinks(nodes)
		deadline := time.Now().Add(lanWait)
		tick := time.NewTicker(50 * time.Millisecond)
		for rep.LANLinked < rep.LANPairs && time.Now().Before(deadline) {
			<-tick.C
			rep.LANPairs, rep.LANLinked = lanLinks(nodes)
		}
		tick.Stop()
	}

	// One message over every connection, then the one-connection check.
	for _, n := range nodes {
		for _, p := range n.svc.Peers() {
			if n.svc.Send(p.ID, []byte("hello")) == nil {
				rep.Sent++
			}
		}
	}
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
arrivals:
	for atomic.LoadInt64(&rep.Received) < rep.Sent {
		select {
		case <-got:
		case <-wait.C:
			break arrivals
		}
	}
	rep.Received = atomic.LoadInt64(&rep.Received)
	for _, n := range nodes {
		for _, p := range n.svc.Peers() {
			rep.Checked++
			if c := n.svc.ConnCount(p.ID); c != 1 {
				rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("%s has %d connections to %s", n.svc.ID().Short(), c, p.ID.Short()))
			}
		}
	}
	rep.Net = w.net.Stats()
	rep.Wall = time.Since(begin)
	return rep, nil
}

// mixOf returns the kinds of mix and their weights, in a fixed order.
func mixOf(mix map[string]float64) ([]Kind, []float64) {
	var kinds []Kind
	var weights []float64
	for _, k := range Kinds {
		if w := mix[k.Name]; w > 0 {
			kinds = append(kinds, k)
			weights = append(weights, w)
		}
	}
	return kinds, weights
}

// pick draws a kind by weight.
func pick(rng *rand.Rand, kinds []Kind, weights []float64) Kind {
	var total float64
	for _, w := range weights {
		total += w
	}
	x := rng.Float64() * total
	for i, w := range weights {
		if x < w {
			return kinds[i]
		}
		x -= w
	}
	return kinds[len(kinds)-1]
}

// String prints the report.
func (r *ScaleReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes in %d LANs; setup %v, connects %v, wall %v\n", r.Nodes, r.LANs,
		r.Setup.Round(time.Millisecond), r.Connect.Round(time.Millisecond), r.Wall.Round(time.Millisecond))
	keys := make([]string, 0, len(r.ByPair))
	for k := range r.ByPair {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tried, ok := 0, 0
	for _, k := range keys {
		pc := r.ByPair[k]
		tried += pc.Tried
		ok += pc.OK
		fmt.Fprintf(&b, "  %-36s %5d/%-5d %5.1f%%\n", k, pc.OK, pc.Tried, 100*float64(pc.OK)/float64(max(pc.Tried, 1)))
	}
	fmt.Fprintf(&b, "  %-36s %5d/%-5d %5.1f%%\n", "all", ok, tried, 100*float64(ok)/float64(max(tried, 1)))
	fmt.Fprintf(&b, "  %-36s %5d/%-5d %5.1f%%\n", "possible in theory", r.PossibleOK, r.Possible, 100*float64(r.PossibleOK)/float64(max(r.Possible, 1)))
	steps := make([]string, 0, len(r.ByStep))
	for k, n := range r.ByStep {
		steps = append(steps, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(steps)
	fmt.Fprintf(&b, "by step: %s\n", strings.Join(steps, ", "))
	if n := len(r.Took); n > 0 {
		fmt.Fprintf(&b, "connect time: p50 %v, p90 %v, p99 %v, max %v\n", r.Took[n/2].Round(time.Millisecond),
			r.Took[n*9/10].Round(time.Millisecond), r.Took[n*99/100].Round(time.Millisecond), r.Took[n-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "same LAN: %d of %d pairs connected\n", r.LANLinked, r.LANPairs)
	fmt.Fprintf(&b, "messages: %d sent, %d received; one connection per pair: %d checked, %d broken\n", r.Sent, r.Received, r.Checked, len(r.Duplicates))
	fmt.Fprintf(&b, "network: %d datagrams sent, %d delivered, %d segments; dropped %v\n", r.Net.Sent, r.Net.Delivered, r.Net.SegmentsSent, r.Net.Dropped)
	causes := make([]string, 0, len(r.Causes))
	for c := range r.Causes {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		if r.Causes[causes[i]] != r.Causes[causes[j]] {
			return r.Causes[causes[i]] > r.Causes[causes[j]]
		}
		return causes[i] < causes[j]
	})
	for i, c := range causes {
		if i == 15 {
			fmt.Fprintf(&b, "  (%d more causes)\n", len(causes)-i)
			break
		}
		fmt.Fprintf(&b, "cause %5d× %s\n", r.Causes[c], c)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "failed: %s\n", f)
	}
	return b.String()
}

// Patterns blanked out of an error to make its cause: endpoints, addresses, lists of
// them, NodeIDs, numbers.
var (
	listRE   = regexp.MustCompile(`\[[^\]]*\]`)
	addrRE   = regexp.MustCompile(`[a-z]+://[0-9.:]+|[0-9]+(\.[0-9]+){3}(:[0-9]+)?`)
	idRE     = regexp.MustCompile(`\b[a-z2-7]{52}\b|\b[a-z2-7]{8}\b`)
	numberRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)
)

// cause is the last ladder step's error with the details that differ from one
// connect to the next blanked, cut to 400 characters.
func cause(err error) string {
	text := err.Error()
	var le *crust.LadderError
	if errors.As(err, &le) && len(le.Steps) > 0 {
		text = le.Steps[len(le.Steps)-1].String()
	}
	text = listRE.ReplaceAllString(text, "[…]")
	text = addrRE.ReplaceAllString(text, "ADDR")
	text = idRE.ReplaceAllStringFunc(text, func(w string) string {
		if strings.ContainsAny(w, "234567") { // a NodeID; "deadline" is not
			return "ID"
		}
		return w
	})
	text = strings.ReplaceAll(text, "\n", " | ")
	text = numberRE.ReplaceAllString(text, "#")
	if len(text) > 400 {
		text = text[:400] + "…"
	}
	return text
}

// lanWait bounds the wait for the beacon to connect every two hosts of each LAN.
const lanWait = 20 * time.Second

// lanLinks counts the pairs of hosts that share a LAN behind a router, and how many
// of them are connected.
func lanLinks(nodes []*simNode) (pairs, linked int) {
	byLAN := map[int][]*simNode{}
	for _, n := range nodes {
		if n.kind.NAT != nil {
			byLAN[n.lan] = append(byLAN[n.lan], n)
		}
	}
	for _, members := range byLAN {
		for i, a := range members {
			peers := map[crust.NodeID]bool{} // a's peers, listed once, not once per pair
			for _, p := range a.svc.Peers() {
				peers[p.ID] = true
			}
			for _, b := range members[i+1:] {
				pairs++
				if peers[b.svc.ID()] {
					linked++
				}
			}
		}
	}
	return pairs, linked
}
