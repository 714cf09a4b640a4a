// Command crust-demo runs a few crust nodes in one process on loopback and prints what
// they report: connections, messages, each node's peer table, and a clean shutdown.
//
// It starts -nodes nodes (default 3) listening on 127.0.0.1 with fresh in-memory keys.
// With -discover beacon (the default) they are given no contacts: each node's LAN
// beacon queries at start on the loopback broadcast address 127.255.255.255 (UDP port
// -beaconport, shared by all; default a free one), the nodes already running answer,
// and every node connects to every node it hears. With -discover connect every node
// instead dials every other at the same moment. Either way each pair is dialled from
// both ends at once. crust keeps one connection per pair (the one initiated by the
// smaller NodeID), so each node still reports exactly one "connected to" per peer, and
// the peer tables show both ends of every pair on the same connection. Once connected,
// each node sends each peer -messages messages, one every -interval. Ctrl-C (SIGINT or
// SIGTERM), or the end of -duration, closes every node and exits 0; a second Ctrl-C
// stops at once.
//
// Usage:
//
//	crust-demo [-nodes 3] [-discover beacon|connect] [-beaconport 0] [-duration 0]
//	           [-messages 5] [-interval 1s] [-loglevel warn]
//
// Logs (log/slog, text) go to standard error; the demo's own output to standard
// output. All traffic, beacons included, stays on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/cmd/internal/console"
	"github.com/crust-p2p/crust/transport/identity"
)

// How the nodes find each other, as named by -discover.
const (
	discoverBeacon  = "beacon"
	discoverConnect = "connect"
)

// loopbackBroadcast is where the beacons go: they never leave the host.
var loopbackBroadcast = netip.MustParseAddr("127.255.255.255")

// options are the demo's settings; main fills them from flags.
type options struct {
	// nodes is how many nodes to start, at least 2.
	nodes int
	// discover is how the nodes find each other: discoverBeacon or discoverConnect.
	discover string
	// beaconPort is the beacon's UDP port, shared by the nodes; 0 picks a free one.
	beaconPort uint
	// duration is how long to run; 0 runs until ctx ends (Ctrl-C).
	duration time.Duration
	// messages is how many messages each node sends each peer; 0 sends until stopped.
	messages int
	// interval is the time between two messages to one peer.
	interval time.Duration
	// tableEvery is how often the peer tables are printed.
	tableEvery time.Duration
	// logLevel is off, error, warn, info or debug.
	logLevel string
	// logOut receives the nodes' logs. Default: os.Stderr.
	logOut io.Writer
}

func defaultOptions() options {
	return options{
		nodes:      3,
		discover:   discoverBeacon,
		messages:   5,
		interval:   time.Second,
		tableEvery: 5 * time.Second,
		logLevel:   "warn",
	}
}

func main() {
	opts := defaultOptions()
	flag.IntVar(&opts.nodes, "nodes", opts.nodes, "number of nodes to start (2 to 100)")
	flag.StringVar(&opts.discover, "discover", opts.discover, "how nodes find each other: beacon (LAN beacon on 127.255.255.255) or connect (explicit dials)")
	flag.UintVar(&opts.beaconPort, "beaconport", opts.beaconPort, "with -discover beacon: the beacon's UDP port; 0 picks a free one")
	flag.DurationVar(&opts.duration, "duration", opts.duration, "how long to run; 0 runs until Ctrl-C")
	flag.IntVar(&opts.messages, "messages", opts.messages, "messages each node sends each peer; 0 sends until stopped")
	flag.DurationVar(&opts.interval, "interval", opts.interval, "time between two messages to one peer")
	flag.DurationVar(&opts.tableEvery, "table", opts.tableEvery, "how often to print the peer tables")
	flag.StringVar(&opts.logLevel, "loglevel", opts.logLevel, "log level: off, error, warn, info or debug")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\nRuns crust nodes on 127.0.0.1 that find each other (by LAN beacon on 127.255.255.255,\nor explicit dials), connect and exchange messages.\n\nFlags:\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "crust-demo: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so a second one stops at once.
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, opts, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crust-demo:", err)
		os.Exit(1)
	}
}

// run starts the nodes, has them find each other, prints what happens to out until ctx ends or
// opts.duration passes, then closes every node. It returns only after every node is
// closed and every goroutine it started has ended.
func run(ctx context.Context, opts options, out io.Writer) error {
	if err := opts.validate(); err != nil {
		return err
	}
	logOut := opts.logOut
	if logOut == nil {
		logOut = os.Stderr
	}
	log, err := console.NewLogger(opts.logLevel, logOut)
	if err != nil {
		return err
	}
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}

	var beaconPort uint16
	if opts.discover == discoverBeacon {
		beaconPort = uint16(opts.beaconPort)
		if beaconPort == 0 {
			if beaconPort, err = freeUDPPort(); err != nil {
				return err
			}
		}
	}

	d := &demo{opts: opts, out: printer{console.NewPrinter(out)}}
	defer d.close() // on an early return; a no-op after the orderly close below
	if beaconPort != 0 {
		d.out.Line("nodes find each other by LAN beacon on %s: each queries at start, the running nodes answer, and every node connects to every node it hears",
			netip.AddrPortFrom(loopbackBroadcast, beaconPort))
	}
	for i := range opts.nodes {
		n, err := startNode(log, beaconPort)
		if err != nil {
			return fmt.Errorf("starting node %d of %d: %w", i+1, opts.nodes, err)
		}
		d.nodes = append(d.nodes, n)
		d.out.node(n, "started: id %s, contact %s", n.svc.ID(), n.svc.Contact())
	}
	for _, n := range d.nodes {
		d.readers.Add(1)
		go d.readEvents(ctx, n)
	}

	if opts.discover == discoverConnect {
		dials := opts.nodes * (opts.nodes - 1)
		d.out.Line("every node dials every other at once: %d dials for %d pairs; crust keeps one connection per pair", dials, dials/2)
		d.dialAll(ctx)
	}

	d.background.Add(1)
	go d.printTables(ctx)

	<-ctx.Done()
	d.out.Line("stopping (%v)", context.Cause(ctx))
	d.background.Wait() // dials and table printer follow ctx
	d.printTable()
	d.close()
	d.printSummary()
	return nil
}

func (o options) validate() error {
	switch {
	case o.nodes < 2 || o.nodes > 100:
		return fmt.Errorf("-nodes %d: want 2 to 100", o.nodes)
	case o.discover != discoverBeacon && o.discover != discoverConnect:
		return fmt.Errorf("-discover %q: want beacon or connect", o.discover)
	case o.beaconPort > 65535:
		return fmt.Errorf("-beaconport %d: want 0 (a free port) to 65535", o.beaconPort)
	case o.duration < 0:
		return fmt.Errorf("-duration %v: want 0 (until Ctrl-C) or more", o.duration)
	case o.messages < 0:
		return fmt.Errorf("-messages %d: want 0 (until stopped) or more", o.messages)
	case o.interval <= 0:
		return fmt.Errorf("-interval %v: want more than 0", o.interval)
	case o.tableEvery <= 0:
		return fmt.Errorf("-table %v: want more than 0", o.tableEvery)
	}
	return nil
}

// demo is one run: its nodes and the goroutines that watch and drive them.
type demo struct {
	opts  options
	out   printer
	nodes []*node

	readers    sync.WaitGroup // one per node, reading its events until Close
	senders    sync.WaitGroup // one per connected (node, peer), sending messages
	background sync.WaitGroup // dials and the table printer; they end with ctx
	closeOnce  sync.Once
}

// node is one Service and what the demo has seen of it.
type node struct {
	svc  *crust.Service
	name string // short form of the NodeID

	mu        sync.Mutex
	connected map[crust.NodeID]int // PeerConnected events per peer
	lost      int
	received  int
	sent      int
	senders   map[crust.NodeID]context.CancelFunc
}

// freeUDPPort returns a UDP port that was free on loopback a moment ago.
func freeUDPPort() (uint16, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free UDP port for the beacon: %w", err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port), nil
}

// startNode starts a Service on 127.0.0.1 with a fresh in-memory key, and with the LAN
// beacon on loopback broadcast if beaconPort is not 0.
func startNode(log *slog.Logger, beaconPort uint16) (*node, error) {
	// The key is made here rather than by crust.New so that the logger can name the node.
	ident, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	cfg := crust.Config{
		Identity:      ident,
		ListenAddrs:   []string{"127.0.0.1:0"},
		ShutdownGrace: time.Second,
		Log:           log.With("node", ident.ID().Short()),
	}
	if beaconPort != 0 {
		cfg.BeaconAddrs, cfg.BeaconPort = []netip.Addr{loopbackBroadcast}, beaconPort
	}
	svc, err := crust.New(cfg)
	if err != nil {
		return nil, err
	}
	return &node{
		svc:       svc,
		name:      ident.ID().Short(),
		connected: make(map[crust.NodeID]int),
		senders:   make(map[crust.NodeID]context.CancelFunc),
	}, nil
}

// connectedSoon reports whether n lists peer among its connected peers within a
// second (or before ctx ends).
func (n *node) connectedSoon(ctx context.Context, peer crust.NodeID) bool {
	for range 20 {
		for _, p := range n.svc.Peers() {
			if p.ID == peer {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// readEvents prints n's events until Close closes the channel, and starts and stops a
// sender per peer as peers connect and are lost.
func (d *demo) readEvents(ctx context.Context, n *node) {
	defer d.readers.Done()
	for ev := range n.svc.Events() {
		switch ev := ev.(type) {
		case crust.ListenerStarted:
			d.out.node(n, "listening on %s", ev.Endpoint)
		case crust.ListenerFailed:
			d.out.node(n, "listener %s failed: %v", ev.Addr, ev.Err)
		case crust.PeerConnected:
			dir := "inbound"
			if ev.Outbound {
				dir = "outbound"
			}
			d.out.node(n, "connected to %s via %s rtt=%v (%s, peer at %s)",
				ev.ID.Short(), ev.Kind, ev.RTT.Round(time.Microsecond), dir, ev.Addr)
			d.startSender(ctx, n, ev.ID)
		case crust.PeerLost:
			d.out.node(n, "lost %s: %s", ev.ID.Short(), ev.Reason)
			n.mu.Lock()
			n.lost++
			if cancel := n.senders[ev.ID]; cancel != nil {
				cancel()
				delete(n.senders, ev.ID)
			}
			n.mu.Unlock()
		case crust.Message:
			d.out.node(n, "message from %s: %q", ev.From.Short(), ev.Data)
			n.mu.Lock()
			n.received++
			n.mu.Unlock()
		default:
			d.out.node(n, "event %T: %+v", ev, ev)
		}
	}
}

// startSender records a PeerConnected and starts sending to the peer; the sender stops
// when the peer is lost or ctx ends.
func (d *demo) startSender(ctx context.Context, n *node, peer crust.NodeID) {
	sctx, cancel := context.WithCancel(ctx)
	n.mu.Lock()
	n.connected[peer]++
	if old := n.senders[peer]; old != nil {
		old()
	}
	n.senders[peer] = cancel
	n.mu.Unlock()

	d.senders.Add(1)
	go func() {
		defer d.senders.Done()
		defer cancel()
		d.send(sctx, n, peer)
	}()
}

// send sends "hello #k from <name>" to peer, the first at once and then one every
// interval, until opts.messages are sent, the peer is gone, or ctx ends.
func (d *demo) send(ctx context.Context, n *node, peer crust.NodeID) {
	tick := time.NewTicker(d.opts.interval)
	defer tick.Stop()
	for k := 1; d.opts.messages == 0 || k <= d.opts.messages; k++ {
		if k > 1 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		err := n.svc.Send(peer, fmt.Appendf(nil, "hello #%d from %s", k, n.name))
		switch {
		case err == nil:
			n.mu.Lock()
			n.sent++
			n.mu.Unlock()
		case errors.Is(err, crust.ErrNotConnected), errors.Is(err, crust.ErrClosed):
			return // PeerLost or Close: a new PeerConnected starts a new sender
		default:
			d.out.node(n, "send to %s: %v", peer.Short(), err)
		}
	}
}

// dialAll has every node connect to every other, all released at the same moment.
// Connect errors are printed; the dials end with ctx.
func (d *demo) dialAll(ctx context.Context) {
	const dialTimeout = 15 * time.Second
	start := make(chan struct{})
	for _, from := range d.nodes {
		for _, to := range d.nodes {
			if from == to {
				continue
			}
			d.background.Add(1)
			go func() {
				defer d.background.Done()
				<-start
				cctx, cancel := context.WithTimeout(ctx, dialTimeout)
				defer cancel()
				err := from.svc.Connect(cctx, to.svc.Contact())
				switch {
				case err == nil || ctx.Err() != nil:
				case from.connectedSoon(ctx, to.svc.ID()):
					// Connect should not fail once the pair is connected; say so plainly
					// rather than hide it.
					d.out.node(from, "connect to %s returned %q, yet the pair is connected (over the other node's dial)", to.name, err)
				default:
					d.out.node(from, "connect to %s failed: %v", to.name, err)
				}
			}()
		}
	}
	close(start)
}

// printTables prints the peer tables every opts.tableEvery until ctx ends.
func (d *demo) printTables(ctx context.Context) {
	defer d.background.Done()
	tick := time.NewTicker(d.opts.tableEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.printTable()
		}
	}
}

// printTable prints every node's Peers() and checks that both ends of each pair
// describe the same single connection: one's local address is the other's remote
// address, and exactly one of them dialled it.
func (d *demo) printTable() {
	peers := make([]map[crust.NodeID]crust.PeerInfo, len(d.nodes))
	var text strings.Builder
	tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEER\tKIND\tDIALLED BY\tLOCAL\tREMOTE\tRTT\tUP")
	for i, n := range d.nodes {
		peers[i] = make(map[crust.NodeID]crust.PeerInfo)
		list := n.svc.Peers()
		if len(list) == 0 {
			fmt.Fprintf(tw, "%s\t-\t\t\t\t\t\t\n", n.name)
		}
		for _, p := range list {
			peers[i][p.ID] = p
			dialler := p.ID.Short()
			if p.Outbound {
				dialler = n.name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%v\n", n.name, p.ID.Short(), p.Kind, dialler,
				p.LocalAddr, p.Addr, p.RTT.Round(time.Microsecond), time.Since(p.Since).Round(100*time.Millisecond))
		}
	}
	tw.Flush()

	pairs, agree := 0, 0
	var problems []string
	for i, a := range d.nodes {
		for j := i + 1; j < len(d.nodes); j++ {
			b := d.nodes[j]
			pairs++
			ab, okA := peers[i][b.svc.ID()]
			ba, okB := peers[j][a.svc.ID()]
			switch {
			case !okA || !okB:
				problems = append(problems, fmt.Sprintf("%s–%s not connected at both ends yet", a.name, b.name))
			case ab.LocalAddr != ba.Addr || ab.Addr != ba.LocalAddr || ab.Outbound == ba.Outbound:
				problems = append(problems, fmt.Sprintf("%s–%s: the ends name different connections (%s→%s, %s→%s)",
					a.name, b.name, ab.LocalAddr, ab.Addr, ba.LocalAddr, ba.Addr))
			default:
				agree++
			}
		}
	}
	fmt.Fprintf(&text, "one connection per pair: %d of %d pairs connected, both ends on the same connection", agree, pairs)
	for _, p := range problems {
		fmt.Fprintf(&text, "\n  %s", p)
	}
	d.out.Block("peer tables", text.String())
}

// close closes every node at once and waits until their events are read and their
// senders have stopped. Safe to call more than once.
func (d *demo) close() {
	d.closeOnce.Do(func() {
		if len(d.nodes) > 0 {
			d.out.Line("closing %d nodes", len(d.nodes))
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, n := range d.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.svc.Close(); err != nil {
					d.out.node(n, "close: %v", err)
				}
			}()
		}
		wg.Wait()
		d.readers.Wait()
		d.senders.Wait()
		d.background.Wait()
		if len(d.nodes) > 0 {
			d.out.Line("all nodes closed in %v", time.Since(start).Round(time.Millisecond))
		}
	})
}

// printSummary prints what each node saw over the whole run.
func (d *demo) printSummary() {
	var text strings.Builder
	tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEERS CONNECTED\tPeerConnected EVENTS\tPeerLost EVENTS\tSENT\tRECEIVED")
	for _, n := range d.nodes {
		n.mu.Lock()
		events := 0
		for _, c := range n.connected {
			events += c
		}
		fmt.Fprintf(tw, "%s\t%d of %d\t%d\t%d\t%d\t%d\n", n.name, len(n.connected), len(d.nodes)-1,
			events, n.lost, n.sent, n.received)
		n.mu.Unlock()
	}
	tw.Flush()
	d.out.Block("summary", text.String())
}

// printer is the demo's console: whole lines, time-stamped, from any goroutine.
type printer struct{ *console.Printer }

// node prints one line about node n: "  1.234s [node abcdefgh] ...".
func (p printer) node(n *node, format string, args ...any) {
	p.Line("[node %s] %s", n.name, fmt.Sprintf(format, args...))
}
