package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/transport"
)

// freeUDPPort returns a UDP port that nothing on the host was bound to a moment ago.
func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free UDP port: %v", err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// testOptions returns options for mode on port, on loopback broadcast, logging to logs.
func testOptions(mode string, port uint16, d time.Duration, logs io.Writer) options {
	opts := defaultOptions()
	opts.mode, opts.port, opts.duration = mode, port, d
	opts.logLevel, opts.logOut = "info", logs
	return opts
}

// output collects what a run prints, from any goroutine, and lets a test wait for a
// line that matches a pattern.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output matches re and returns the match, or fails the test
// after timeout.
func (o *output) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		m, changed := re.FindStringSubmatch(o.buf.String()), o.changed
		o.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no output matching %q within %v; output:\n%s", re, timeout, o.String())
			return nil
		}
	}
}

var (
	nodeStarted   = regexp.MustCompile(`node (\w{8}) started`)
	nodeConnected = regexp.MustCompile(`connected to (\w{8}) via tcp-direct`)
	nodeMessage   = regexp.MustCompile(`message from (\w{8}): "hello from (\w{8})"`)
	nodeSummary   = regexp.MustCompile(`closed: connected to (\d+) peers`)
)

// Three nodes given no contacts, only the same beacon port on loopback broadcast, find
// each other, connect, say hello, and close cleanly.
func TestNodesFindEachOtherByBeacon(t *testing.T) {
	defer goleak.VerifyNone(t)
	const nodes = 3
	port := freeUDPPort(t)
	outs, logs, errs := make([]*output, nodes), make([]*output, nodes), make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		outs[i], logs[i] = newOutput(), newOutput()
		wg.Go(func() {
			errs[i] = run(context.Background(), testOptions(modeNode, port, 2*time.Second, logs[i]), outs[i])
		})
	}
	wg.Wait()

	names := map[string]bool{}
	for i, out := range outs {
		if m := nodeStarted.FindStringSubmatch(out.String()); m != nil {
			names[m[1]] = true
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("node %d output:\n%s\nlogs:\n%s", i+1, out, logs[i])
			}
		})
	}
	if len(names) != nodes {
		t.Fatalf("%d distinct nodes started, want %d", len(names), nodes)
	}
	for i, out := range outs {
		if errs[i] != nil {
			t.Errorf("node %d: run: %v", i+1, errs[i])
		}
		text := out.String()
		self := nodeStarted.FindStringSubmatch(text)[1]
		peers, hellos := map[string]bool{}, map[string]bool{}
		for _, m := range nodeConnected.FindAllStringSubmatch(text, -1) {
			if !names[m[1]] || m[1] == self {
				t.Errorf("node %s connected to %s, not one of the other nodes", self, m[1])
			}
			peers[m[1]] = true
		}
		for _, m := range nodeMessage.FindAllStringSubmatch(text, -1) {
			if m[1] != m[2] {
				t.Errorf("node %s: message from %s says it is from %s", self, m[1], m[2])
			}
			hellos[m[1]] = true
		}
		if len(peers) != nodes-1 {
			t.Errorf("node %s connected to %d peers, want %d", self, len(peers), nodes-1)
		}
		if len(hellos) != nodes-1 {
			t.Errorf("node %s got hellos from %d peers, want %d", self, len(hellos), nodes-1)
		}
		if m := nodeSummary.FindStringSubmatch(text); m == nil || m[1] != fmt.Sprint(nodes-1) {
			t.Errorf("node %s: summary %q, want it to say connected to %d peers", self, m, nodes-1)
		}
	}
}

// listen prints the Query and the Announce that broadcast sends, with the sender's ID.
func TestListenHearsBroadcast(t *testing.T) {
	defer goleak.VerifyNone(t)
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listenOut, logs := newOutput(), newOutput()
	listenDone := make(chan error, 1)
	go func() { listenDone <- run(ctx, testOptions(modeListen, port, 0, logs), listenOut) }()
	listenOut.waitFor(t, regexp.MustCompile(`listening for beacons on udp port \d+`), 10*time.Second)

	bcastOut := newOutput()
	if err := run(context.Background(), testOptions(modeBroadcast, port, 200*time.Millisecond, logs), bcastOut); err != nil {
		t.Fatalf("broadcast: run: %v", err)
	}
	m := regexp.MustCompile(`sent a query and an announce as (\w{8}) to 127\.255\.255\.255:(\d+)`).FindStringSubmatch(bcastOut.String())
	if m == nil || m[2] != fmt.Sprint(port) {
		t.Fatalf("broadcast output lacks what it sent, to port %d:\n%s", port, bcastOut)
	}
	id := m[1]
	for _, typ := range []string{"query", "announce"} {
		listenOut.waitFor(t, regexp.MustCompile(`heard `+typ+` from `+id+` at 127\.0\.0\.1:\d+: tcp port 0, quic port 0, 0 contacts`), 10*time.Second)
	}

	cancel()
	if err := <-listenDone; err != nil {
		t.Fatalf("listen: run: %v", err)
	}
	if !strings.Contains(listenOut.String(), "stopped: heard 2 beacons") {
		t.Errorf("listen did not report stopping after 2 beacons:\n%s\nlogs:\n%s", listenOut, logs)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want string // the mode, or a substring of the error
		ok   bool
	}{
		{[]string{"listen"}, modeListen, true},
		{[]string{"node", "-port", "6000", "-duration", "1s"}, modeNode, true},
		{[]string{"-addr", "192.168.1.255", "broadcast"}, modeBroadcast, true},
		{nil, "want one mode", false},
		{[]string{"listen", "node"}, "want one mode", false},
		{[]string{"shout"}, `mode "shout"`, false},
		{[]string{"listen", "-addr", "ff02::1"}, "want an IPv4 broadcast address", false},
		{[]string{"listen", "-addr", "lan"}, `-addr "lan"`, false},
		{[]string{"listen", "-port", "0"}, "-port 0", false},
		{[]string{"listen", "-port", "70000"}, "-port 70000", false},
		{[]string{"listen", "-duration", "-1s"}, "-duration", false},
		{[]string{"listen-for", "192.0.2.1:5000", "-hops", "2"}, modeListenFor, true},
		{[]string{"listen-for"}, "want one mode", false},
		{[]string{"listen-for", "nowhere"}, "want the peer's ip:port", false},
		{[]string{"listen-for", "192.0.2.1:5000", "-hops", "many"}, "-hops", false},
		{[]string{"listen", "192.0.2.1:5000"}, "want one mode", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, err := parseArgs(tt.args, io.Discard)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.ok && opts.mode != tt.want:
				t.Fatalf("mode %q, want %q", opts.mode, tt.want)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	opts, err := parseArgs([]string{"node", "-addr", "10.0.0.255", "-port", "6000", "-listen", "10.0.0.7:0"}, io.Discard)
	if err != nil || opts.addr.String() != "10.0.0.255" || opts.port != 6000 || opts.listen != "10.0.0.7:0" {
		t.Fatalf("parseArgs = %+v, %v", opts, err)
	}
}

func TestUnknownLogLevel(t *testing.T) {
	opts := testOptions(modeListen, 6000, 0, io.Discard)
	opts.logLevel = "loud"
	if err := run(context.Background(), opts, io.Discard); err == nil || !strings.Contains(err.Error(), `-loglevel "loud"`) {
		t.Fatalf("run: %v, want a -loglevel error", err)
	}
}

// listen-for sends its hop-limited SYN from the listen port and prints the
// connection the peer then makes from the port it was opened for. On loopback one
// hop reaches the peer, so the SYN lands on the peer's listener: proof that it left
// from our listen port toward the peer's.
func TestListenFor(t *testing.T) {
	defer goleak.VerifyNone(t)
	// The peer listens on a shared port, so it can also connect from it.
	peer, err := transport.OSNet{}.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	opts := testOptions(modeListenFor, 1, 5*time.Second, io.Discard)
	opts.peer, opts.hops = netip.MustParseAddrPort(peer.Addr().String()), 1
	out := newOutput()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- run(ctx, opts, out) }()
	m := out.waitFor(t, regexp.MustCompile(`listening on (\S+)`), 5*time.Second)
	syn, err := peer.Accept() // our SYN, one hop: on loopback it reaches the peer
	if err != nil {
		t.Fatal(err)
	}
	if got := syn.RemoteAddr().String(); got != m[1] {
		t.Fatalf("the firewall-opening SYN came from %s, want the listen address %s", got, m[1])
	}
	syn.Close()
	out.waitFor(t, regexp.MustCompile(`firewall opened for \S+ with a SYN of hop limit 1`), 5*time.Second)
	// The peer connects in from the port the firewall was opened for.
	c, err := transport.OSNet{}.DialFrom(ctx, "tcp4", peer.Addr().String(), m[1])
	if err != nil {
		t.Fatalf("connecting in: %v", err)
	}
	c.Close()
	out.waitFor(t, regexp.MustCompile(`accepted a connection from `+regexp.QuoteMeta(peer.Addr().String())), 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
