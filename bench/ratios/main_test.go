package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseAndRatios(t *testing.T) {
	in := `goos: linux
BenchmarkThroughput/crust/64B-2   	10000000	 445.94 MB/s	   6000000 msgs/s	         0 ns/op	  12 B/op	  0 allocs/op
BenchmarkThroughput/crust/64B-2   	10000000	 445.94 MB/s	   7000000 msgs/s	         0 ns/op
BenchmarkThroughput/crust/64B-2   	10000000	 445.94 MB/s	   9000000 msgs/s	         0 ns/op
BenchmarkThroughput/rawTLS/64B-2  	10000000	 445.94 MB/s	  14000000 msgs/s	         0 ns/op
PASS
`
	r := results{}
	if err := r.parse(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if m, ok := r.median("BenchmarkThroughput/crust/64B", "msgs/s"); !ok || m != 7e6 {
		t.Fatalf("median = %v, %v; want 7e6 (the middle of three)", m, ok)
	}
	if got := r.ratio("BenchmarkThroughput/crust/64B", "BenchmarkThroughput/rawTLS/64B", "msgs/s"); got != "0.50" {
		t.Fatalf("ratio = %s, want 0.50", got)
	}
	if got := r.ratio("BenchmarkThroughput/crust/1KiB", "BenchmarkThroughput/rawTLS/1KiB", "msgs/s"); got != "–" {
		t.Fatalf("ratio of missing benchmarks = %s, want –", got)
	}
	var out bytes.Buffer
	r.print(&out)
	if !strings.Contains(out.String(), "| 64B | 7.00 M | 14.00 M | **0.50** |") {
		t.Fatalf("table misses the 64B row:\n%s", out.String())
	}
	if err := r.parse(strings.NewReader("BenchmarkX-2 1 abc msgs/s\n")); err == nil {
		t.Fatal("a malformed value was accepted")
	}
}
