// Command crust-sim runs crust's real nodes on the simulator's virtual internet
// (package sim): no packet leaves the process.
//
//	crust-sim matrix [-protocols tcp,quic,tcp+quic] [-kinds public,full-cone,...]
//	                 [-seed 1] [-parallel 8] [-svg FILE]
//	crust-sim scale  [-nodes 10000] [-bootstrap 3] [-peers 8] [-protocols tcp+quic]
//	                 [-seed 1] [-parallel 64] [-step 10s]
//	                 [-beacons=true] [-cpuprofile FILE] [-memprofile FILE]
//
//	crust-sim pair   -a KIND -b KIND [-protocols tcp+quic] [-seed 1] [-trace FILE] [-v]
//
// matrix connects a node behind every kind of site to one behind every other, for
// each protocol set, prints a table of which ladder step connected them, writes the
// heatmap to -svg, and exits 1 if any cell differs from the theory (sim.Possible).
// scale runs a network of many nodes in LANs behind a mix of NATs, each asking for
// random peers, and prints success per kind of pair, connect times, messages and
// the one-connection-per-pair check; it exits 1 if a check fails. pair runs one cell
// of the matrix again, with the same seed (the same layout and NAT port choices;
// the nodes run in real time, so timings differ), writing every packet's steps to
// -trace and, with -v, the nodes' debug logs to standard error.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/crust-p2p/crust/sim"
	"github.com/crust-p2p/crust/sim/vnet"
)

func main() {
	// quic-go warns once that a virtual socket has no receive buffer to enlarge.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	ok := true
	switch os.Args[1] {
	case "matrix":
		ok, err = matrix(os.Args[2:])
	case "scale":
		ok, err = scale(os.Args[2:])
	case "pair":
		ok, err = pair(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crust-sim:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: crust-sim matrix|scale|pair [flags] (crust-sim matrix -h for the flags)")
	os.Exit(2)
}

// protocolSets parses "tcp,quic,tcp+quic".
func protocolSets(s string) [][]string {
	var out [][]string
	for _, set := range strings.Split(s, ",") {
		if set = strings.TrimSpace(set); set != "" {
			out = append(out, strings.Split(set, "+"))
		}
	}
	return out
}

func matrix(args []string) (bool, error) {
	fs := flag.NewFlagSet("matrix", flag.ExitOnError)
	protocols := fs.String("protocols", "tcp,quic,tcp+quic", "protocol sets, comma-separated; + joins protocols")
	kinds := fs.String("kinds", "", "kinds of site, comma-separated (default: all)")
	seed := fs.Uint64("seed", 1, "seed of the networks' random choices")
	parallel := fs.Int("parallel", 8, "pairs run at once")
	svg := fs.String("svg", "", "write the heatmap (SVG) to this file")
	fs.Parse(args)
	m := sim.Matrix{Protocols: protocolSets(*protocols), Seed: *seed, Parallel: *parallel}
	if *kinds != "" {
		for _, name := range strings.Split(*kinds, ",") {
			k, ok := sim.KindByName(strings.TrimSpace(name))
			if !ok {
				return false, fmt.Errorf("unknown kind %q", name)
			}
			m.Kinds = append(m.Kinds, k)
		}
	}
	res := m.Run(context.Background())
	fmt.Print(res.Table())
	if *svg != "" {
		if err := os.WriteFile(*svg, res.SVG(), 0o644); err != nil {
			return false, err
		}
		fmt.Println("heatmap:", *svg)
	}
	bad := res.Unexpected()
	for _, c := range bad {
		fmt.Printf("differs from theory: %s → %s over %s: possible=%v, kind %q, err %v %v\n", c.A, c.B, c.Protocols, c.Possible, c.Kind, c.Outcome.Err, c.Err)
	}
	fmt.Printf("%d cells, %d as theory says\n", len(res.Cells), len(res.Cells)-len(bad))
	return len(bad) == 0, nil
}

func scale(args []string) (bool, error) {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	nodes := fs.Int("nodes", 10000, "nodes besides the bootstrap ones")
	boot := fs.Int("bootstrap", 3, "public bootstrap nodes")
	peers := fs.Int("peers", 8, "random peers each node asks for")
	protocols := fs.String("protocols", "tcp+quic", "the nodes' protocols, joined by +")
	seed := fs.Uint64("seed", 1, "seed of the layout, the NATs' ports and the peer choices")
	parallel := fs.Int("parallel", 64, "starts and connects in flight at once")
	step := fs.Duration("step", 10*time.Second, "each ladder step's time limit")
	beacons := fs.Bool("beacons", true, "run the LAN beacon on hosts behind routers (LAN peers find and connect to each other)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile, taken once every connect is done, to this file")
	fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return false, err
		}
		defer pprof.StopCPUProfile()
	}
	var afterConnects func()
	if *memProfile != "" {
		afterConnects = func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "crust-sim:", err)
				return
			}
			defer f.Close()
			runtime.GC()
			pprof.WriteHeapProfile(f)
		}
	}
	rep, err := sim.Scale{
		Nodes: *nodes, Bootstrap: *boot, Peers: *peers, Protocols: strings.Split(*protocols, "+"),
		Seed: *seed, Parallel: *parallel, StepTimeout: *step, Log: os.Stderr,
		Beacons: *beacons, AfterConnects: afterConnects,
	}.Run(context.Background())
	if err != nil {
		return false, err
	}
	fmt.Print(rep)
	return rep.Received == rep.Sent && len(rep.Duplicates) == 0, nil
}

func pair(args []string) (bool, error) {
	fs := flag.NewFlagSet("pair", flag.ExitOnError)
	a := fs.String("a", "port-restricted", "A's kind of site (A connects)")
	b := fs.String("b", "port-restricted", "B's kind of site")
	protocols := fs.String("protocols", "tcp+quic", "the nodes' protocols, joined by +")
	seed := fs.Uint64("seed", 1, "seed of the network's random choices")
	trace := fs.String("trace", "", "write every packet step to this file")
	verbose := fs.Bool("v", false, "the nodes' debug logs to standard error")
	fs.Parse(args)
	p := sim.Pair{Protocols: strings.Split(*protocols, "+"), Seed: *seed}
	var ok bool
	if p.A, ok = sim.KindByName(*a); !ok {
		return false, fmt.Errorf("unknown kind %q", *a)
	}
	if p.B, ok = sim.KindByName(*b); !ok {
		return false, fmt.Errorf("unknown kind %q", *b)
	}
	if *verbose {
		p.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *trace != "" {
		f, err := os.Create(*trace)
		if err != nil {
			return false, err
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		p.Trace = func(e vnet.Event) { fmt.Fprintln(w, e) }
	}
	out, err := p.Run(context.Background())
	if err != nil {
		return false, err
	}
	possible := sim.Possible(p.A, p.B, p.Protocols)
	if out.Err != nil {
		fmt.Printf("%s → %s over %s: failed after %v (theory: possible=%v): %v\n", *a, *b, *protocols, out.Took.Round(time.Millisecond), possible, out.Err)
	} else {
		fmt.Printf("%s → %s over %s: %s in %v (theory: possible=%v)\n", *a, *b, *protocols, out.Kind, out.Took.Round(time.Millisecond), possible)
	}
	return (out.Err == nil) == possible, nil
}
