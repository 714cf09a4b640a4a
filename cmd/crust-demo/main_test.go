package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/cmd/internal/console"
)

var (
	startedLine   = regexp.MustCompile(`\[node (\w{8})\] started: `)
	connectedLine = regexp.MustCompile(`\[node (\w{8})\] connected to (\w{8}) via tcp-direct rtt=`)
	messageLine   = regexp.MustCompile(`\[node (\w{8})\] message from (\w{8}): "hello #\d+ from (\w{8})"`)
)

// The demo, run for a short while, connects every node to every other exactly once,
// whether the nodes find each other by beacon or dial each other explicitly, delivers
// messages on every pair, closes cleanly and leaves no goroutine behind.
func TestRunConnectsEveryPairOnce(t *testing.T) {
	for _, tt := range []struct {
		discover string
		nodes    int
	}{
		{discoverBeacon, 2},
		{discoverBeacon, 3},
		{discoverBeacon, 4},
		{discoverConnect, 3},
	} {
		nodes := tt.nodes
		t.Run(fmt.Sprintf("%s %d nodes", tt.discover, nodes), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			opts := defaultOptions()
			opts.nodes = nodes
			opts.discover = tt.discover
			opts.duration = 2 * time.Second
			opts.interval = 200 * time.Millisecond
			opts.tableEvery = 500 * time.Millisecond
			var logs bytes.Buffer
			opts.logOut = &logs

			var out bytes.Buffer
			if err := run(context.Background(), opts, &out); err != nil {
				t.Fatalf("run: %v", err)
			}
			text := out.String()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("output:\n%s\nlogs:\n%s", text, logs.String())
				}
			})

			var names []string
			for _, m := range startedLine.FindAllStringSubmatch(text, -1) {
				names = append(names, m[1])
			}
			if len(names) != nodes {
				t.Fatalf("%d nodes started, want %d", len(names), nodes)
			}
			connected := map[string]map[string]int{}
			received := map[string]map[string]int{}
			for _, n := range names {
				connected[n], received[n] = map[string]int{}, map[string]int{}
			}
			for _, m := range connectedLine.FindAllStringSubmatch(text, -1) {
				connected[m[1]][m[2]]++
			}
			for _, m := range messageLine.FindAllStringSubmatch(text, -1) {
				if m[2] != m[3] {
					t.Errorf("message from %s says it is from %s", m[2], m[3])
				}
				received[m[1]][m[2]]++
			}
			for _, n := range names {
				for _, peer := range names {
					if peer == n {
						if connected[n][peer] != 0 {
							t.Errorf("node %s connected to itself", n)
						}
						continue
					}
					if got := connected[n][peer]; got != 1 {
						t.Errorf("node %s reported %d connections to %s, want exactly 1", n, got, peer)
					}
					if received[n][peer] == 0 {
						t.Errorf("node %s received no message from %s", n, peer)
					}
				}
			}
			wants := []string{
				"one connection per pair:",
				"all nodes closed in",
				"--- summary ---",
			}
			if tt.discover == discoverBeacon {
				wants = append(wants, "nodes find each other by LAN beacon on 127.255.255.255:")
			} else {
				wants = append(wants, "every node dials every other at once")
			}
			for _, want := range wants {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

// run stops when its context ends, as it does on Ctrl-C.
func TestRunStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	opts := defaultOptions()
	opts.logLevel = "off"
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, io.Discard) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 s of cancel")
	}
}

func TestOptionsAndLogLevelErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*options)
		want   string // substring of the error; "" for no error
	}{
		{"defaults", func(*options) {}, ""},
		{"one node", func(o *options) { o.nodes = 1 }, "-nodes 1"},
		{"explicit dials", func(o *options) { o.discover = discoverConnect }, ""},
		{"unknown discovery", func(o *options) { o.discover = "mdns" }, `-discover "mdns"`},
		{"beacon port too large", func(o *options) { o.beaconPort = 70000 }, "-beaconport 70000"},
		{"too many nodes", func(o *options) { o.nodes = 101 }, "-nodes 101"},
		{"negative duration", func(o *options) { o.duration = -time.Second }, "-duration"},
		{"negative messages", func(o *options) { o.messages = -1 }, "-messages"},
		{"zero interval", func(o *options) { o.interval = 0 }, "-interval"},
		{"zero table period", func(o *options) { o.tableEvery = 0 }, "-table"},
		{"unknown log level", func(o *options) { o.logLevel = "loud" }, `-loglevel "loud"`},
		{"log level off", func(o *options) { o.logLevel = "off" }, ""},
		{"log level in capitals", func(o *options) { o.logLevel = "DEBUG" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := defaultOptions()
			tt.change(&opts)
			err := opts.validate()
			if err == nil {
				_, err = console.NewLogger(opts.logLevel, io.Discard)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
