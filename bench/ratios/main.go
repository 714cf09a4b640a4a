// Command ratios turns the output of make bench (benchstat-compatible text) into the
// README's Performance tables: the median of each benchmark's runs, and crust's ratio
// to the baseline measured in the same run.
//
//	go run ./bench/ratios bench/new.txt bench/libp2p.txt bench/memory.txt
//
// A figure whose benchmark is missing from the files is shown as "–".
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ratios FILE...  (go test -bench output)")
		os.Exit(2)
	}
	r := results{}
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ratios:", err)
			os.Exit(1)
		}
		err = r.parse(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "ratios: %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	r.print(os.Stdout)
}

// results holds every value read, by benchmark name (without the -GOMAXPROCS
// suffix) and unit.
type results map[string]map[string][]float64

// parse reads benchmark lines: "BenchmarkName-2  N  value unit  value unit ...".
func (r results) parse(in io.Reader) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %v", name, fields[i], err)
			}
			if r[name] == nil {
				r[name] = map[string][]float64{}
			}
			r[name][fields[i+1]] = append(r[name][fields[i+1]], v)
		}
	}
	return sc.Err()
}

// median returns the median of name's values in unit, and whether there are any.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// ratio formats r's median of a over that of b, in unit.
func (r results) ratio(a, b, unit string) string {
	x, ok1 := r.median(a, unit)
	y, ok2 := r.median(b, unit)
	if !ok1 || !ok2 || y == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x/y)
}

// rate formats the median of name in unit with an SI prefix.
func (r results) rate(name, unit string) string {
	v, ok := r.median(name, unit)
	if !ok {
		return "–"
	}
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// beside formats three table cells: a's and base's msgs/s, and a's ratio to base
// in bold.
func (r results) beside(a, base string) string {
	return fmt.Sprintf("%s | %s | **%s**", r.rate(a, "msgs/s"), r.rate(base, "msgs/s"), r.ratio(a, base, "msgs/s"))
}

var sizes = []string{"64B", "1KiB", "64KiB", "1MiB"}

func (r results) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	const tp, q, lp = "BenchmarkThroughput/", "BenchmarkQUIC/", "BenchmarkThroughput/"

	p("TCP, msgs/s (medians) and crust's ratios to raw TLS 1.3 with the same framing:\n\n")
	p("| message | crust Events | raw TLS | Events / raw TLS | crust OnMessage | raw TLS, lent | OnMessage / lent | OnMessage / raw TLS | raw TCP |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range sizes {
		p("| %s | %s | %s | %s | %s |\n", s,
			r.beside(tp+"crust/"+s, tp+"rawTLS/"+s), r.beside(tp+"crustHandler/"+s, tp+"rawTLSLent/"+s),
			r.ratio(tp+"crustHandler/"+s, tp+"rawTLS/"+s, "msgs/s"), r.rate(tp+"rawTCP/"+s, "msgs/s"))
	}

	p("\nQUIC, msgs/s and crust's ratios to raw quic-go (one stream, the same framing):\n\n")
	p("| message | crust Events | raw quic-go | Events / raw | crust OnMessage | raw quic-go, lent | OnMessage / lent |\n")
	p("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range sizes {
		p("| %s | %s | %s |\n", s, r.beside(q+"crust/"+s, q+"rawQUIC/"+s), r.beside(q+"crustHandler/"+s, q+"rawQUICLent/"+s))
	}

	p("\ncrust (OnMessage) beside go-libp2p (bench/libp2p), msgs/s and crust / libp2p:\n\n")
	p("| message | crust TCP | libp2p TCP | ratio | crust QUIC | libp2p QUIC | ratio |\n")
	p("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range sizes {
		p("| %s | %s | %s |\n", s, r.beside(lp+"crust-tcp/"+s, lp+"libp2p-tcp/"+s), r.beside(lp+"crust-quic/"+s, lp+"libp2p-quic/"+s))
	}

	const st = "BenchmarkSetup/"
	p("\nConnection setup, dial to usable (ns/op), and the ratio to a raw TLS dial and handshake:\n\n")
	p("| | time | / raw TLS | / raw TLS, confirmed |\n| --- | --- | --- | --- |\n")
	for _, impl := range []string{"crust-tcp", "libp2p-tcp", "crust-quic", "libp2p-quic", "raw-tls", "raw-tls-confirmed"} {
		t, ok := r.median(st+impl, "ns/op")
		if !ok {
			continue
		}
		p("| %s | %.0f µs | %s | %s |\n", impl, t/1e3, r.ratio(st+impl, st+"raw-tls", "ns/op"), r.ratio(st+impl, st+"raw-tls-confirmed", "ns/op"))
	}

	const m = "BenchmarkIdleConnections/"
	p("\nIdle connections on one node, per connection:\n\n")
	p("| | heap + stack | of which stack | goroutines |\n| --- | --- | --- | --- |\n")
	for _, c := range []string{"tcp/1000", "tcp/10000", "quic/1000", "quic/10000", "raw-tls/1000", "raw-tls/10000"} {
		b, ok := r.median(m+c, "B/conn")
		if !ok {
			continue
		}
		s, _ := r.median(m+c, "stack-B/conn")
		g, _ := r.median(m+c, "goroutines/conn")
		p("| %s | %.0f B (%.1f KiB) | %.0f B | %.1f |\n", c, b, b/1024, s, g)
	}

	const f = "BenchmarkFanout/"
	p("\nFan-out, one node sending 1 KiB messages to 100 peers: TCP %s msgs/s, QUIC %s msgs/s.\n",
		r.rate(f+"tcp", "msgs/s"), r.rate(f+"quic", "msgs/s"))
}
