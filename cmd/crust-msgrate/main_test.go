package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// runTimeout bounds a whole run in these tests, far above what they take, so that a
// run that hangs fails the test rather than stalling it until go test's timeout.
const runTimeout = 60 * time.Second

// latencyLine is the summary's latency line, with its four percentiles.
var latencyLine = regexp.MustCompile(`(?m)^  latency +p50 \S+ +p90 \S+ +p99 \S+ +max \S+ +\(\d+ msgs`)

// liveLine is a live line printed on its own line (standard output is no terminal).
var liveLine = regexp.MustCompile(`(?m)^ +\d+s +out +\d+ msg/s +[\d.]+ MB/s +\| +in +\d+ msg/s +[\d.]+ MB/s +\| +1 peer$`)

// testOptions are the defaults with logs at warn (shown if a test fails) and no loss
// allowed.
func testOptions() options {
	opts := defaultOptions()
	opts.expectNoLoss = true
	return opts
}

// instance is one run in the background, as a second process would be.
type instance struct {
	name   string
	out    *lineBuffer // standard output
	logs   *lineBuffer // standard error
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned res and err
	res    result
	err    error
}

// startInstance starts run with opts in a goroutine. The test fails, showing the
// instance's output and logs, if it does not end within runTimeout.
func startInstance(t *testing.T, name string, opts options) *instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	in := &instance{name: name, out: newLineBuffer(), logs: newLineBuffer(), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(in.done)
		in.res, in.err = run(ctx, opts, in.out, in.logs)
	}()
	t.Cleanup(func() {
		cancel()
		<-in.done
		if t.Failed() {
			t.Logf("instance %s output:\n%s\nlogs:\n%s", name, in.out, in.logs)
		}
	})
	return in
}

// contact waits for the instance's contact line and returns its text.
func (in *instance) contact(t *testing.T) string {
	t.Helper()
	line, err := in.out.waitFor("contact: ", in.done)
	if err != nil {
		t.Fatalf("instance %s: %v", in.name, err)
	}
	return strings.TrimPrefix(line, "contact: ")
}

// wait waits for run to return, and returns what it measured; run's error fails the
// test.
func (in *instance) wait(t *testing.T) result {
	t.Helper()
	<-in.done
	if in.err != nil {
		t.Fatalf("instance %s: run: %v", in.name, in.err)
	}
	return in.res
}

// lineBuffer is a writer that keeps everything written to it and lets a test wait for
// a line with a given prefix.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func newLineBuffer() *lineBuffer { return &lineBuffer{written: make(chan struct{})} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.written)
	b.written = make(chan struct{})
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the first whole line that starts with prefix, once it is written;
// an error if done is closed (the run ended) before.
func (b *lineBuffer) waitFor(prefix string, done <-chan struct{}) (string, error) {
	for {
		b.mu.Lock()
		text, written := b.buf.String(), b.written
		b.mu.Unlock()
		for line := range strings.Lines(text) {
			if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, "\n") {
				return strings.TrimSuffix(line, "\n"), nil
			}
		}
		select {
		case <-written:
		case <-done:
			return "", fmt.Errorf("ended without printing a line starting %q", prefix)
		}
	}
}

// Two instances, the second joining the first with its printed contact, send to each
// other at 1000 messages per second for 2 s: each sends and receives about 2000
// messages, none lost, prints live lines once a second and a summary with the latency
// percentiles, and every goroutine ends.
func TestTwoInstancesAtAFixedRate(t *testing.T) {
	defer goleak.VerifyNone(t)
	opts := testOptions()
	opts.rate = 1000
	opts.duration = 2 * time.Second
	a := startInstance(t, "a", opts)
	opts.connect = []string{a.contact(t)}
	b := startInstance(t, "b", opts)
	ra, rb := a.wait(t), b.wait(t)

	// A sender is paced by the time since it started, which is within the 2 s: it
	// sends at most 2000. A tick late by up to 200 ms at the end (a loaded machine)
	// still leaves 1800. The receiver can get no more than the other sent, and waits
	// for the last of it, so it gets about as many.
	const low, high = 1800, 2000
	for _, side := range []struct {
		name        string
		self, other result
		out         string
	}{{"a", ra, rb, a.out.String()}, {"b", rb, ra, b.out.String()}} {
		self, other := side.self, side.other
		if n := self.counts.sentMsgs; n < low || n > high {
			t.Errorf("%s sent %d messages, want %d to %d", side.name, n, low, high)
		}
		if n := self.counts.recvMsgs; n < low || n > other.counts.sentMsgs {
			t.Errorf("%s received %d messages, want %d to the %d the other sent", side.name, n, low, other.counts.sentMsgs)
		}
		if want := self.counts.sentMsgs * uint64(opts.size); self.counts.sentBytes != want {
			t.Errorf("%s sent %d bytes, want %d (%d-byte messages)", side.name, self.counts.sentBytes, want, opts.size)
		}
		if self.lost != 0 || self.malformed != 0 {
			t.Errorf("%s: %d lost, %d malformed, want none", side.name, self.lost, self.malformed)
		}
		if self.samples != self.counts.recvMsgs {
			t.Errorf("%s: %d latencies for %d messages", side.name, self.samples, self.counts.recvMsgs)
		}
		if !(0 < self.p50 && self.p50 <= self.p90 && self.p90 <= self.p99 && self.p99 <= self.max && self.max < 10*time.Second) {
			t.Errorf("%s: latencies p50 %v p90 %v p99 %v max %v, want 0 < p50 ≤ p90 ≤ p99 ≤ max < 10s", side.name, self.p50, self.p90, self.p99, self.max)
		}
		if self.peers != 1 {
			t.Errorf("%s sent to %d peers, want 1", side.name, self.peers)
		}
		if !latencyLine.MatchString(side.out) {
			t.Errorf("%s's summary has no latency percentiles", side.name)
		}
		if n := len(liveLine.FindAllString(side.out, -1)); n < 1 {
			t.Errorf("%s printed no live line in 2 s", side.name)
		}
	}
}

// With -max, two instances send as fast as they can: something gets through, nothing
// is lost. One runs until it is interrupted (as by Ctrl-C, once the other has printed
// its first live line, a second into its 1 s of sending) and still prints its summary.
func TestTwoInstancesAsFastAsPossible(t *testing.T) {
	defer goleak.VerifyNone(t)
	opts := testOptions()
	opts.max = true
	opts.duration = 0 // until interrupted
	a := startInstance(t, "a", opts)
	opts.connect = []string{a.contact(t)}
	opts.duration = time.Second
	b := startInstance(t, "b", opts)
	if _, err := b.out.waitFor("    1s  out ", b.done); err != nil {
		t.Fatalf("instance b: %v", err)
	}
	a.cancel()
	ra, rb := a.wait(t), b.wait(t)

	for _, side := range []struct {
		name        string
		self, other result
	}{{"a", ra, rb}, {"b", rb, ra}} {
		self, other := side.self, side.other
		if self.counts.sentMsgs == 0 || self.counts.recvMsgs == 0 {
			t.Errorf("%s sent %d and received %d messages, want some of each", side.name, self.counts.sentMsgs, self.counts.recvMsgs)
		}
		if self.counts.recvMsgs > other.counts.sentMsgs {
			t.Errorf("%s received %d messages, more than the %d the other sent", side.name, self.counts.recvMsgs, other.counts.sentMsgs)
		}
		if self.lost != 0 {
			t.Errorf("%s lost %d messages, want none", side.name, self.lost)
		}
	}
	if out := a.out.String(); !strings.Contains(out, "interrupted after ") || !latencyLine.MatchString(out) {
		t.Errorf("the interrupted instance did not say so, or printed no summary")
	}
}

// An instance waiting for peers stops when its context ends (Ctrl-C), sending nothing.
func TestStopsWhileWaitingForPeers(t *testing.T) {
	defer goleak.VerifyNone(t)
	opts := testOptions()
	opts.peers = 2
	a := startInstance(t, "a", opts)
	if _, err := a.out.waitFor("waiting for 2 peers to connect", a.done); err != nil {
		t.Fatal(err)
	}
	a.cancel()
	res := a.wait(t)
	if res.counts != (totals{}) {
		t.Errorf("counts %+v, want none", res.counts)
	}
	if _, err := a.out.waitFor("stopped before 2 peers connected", a.done); err != nil {
		t.Error(err)
	}
}

// A contact that cannot be reached is a start failure: exit status 2.
func TestUnreachableContactFails(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Start a node for a valid contact, then stop it so that nobody listens there.
	a := startInstance(t, "a", testOptions())
	contact := a.contact(t)
	a.cancel()
	<-a.done

	opts := testOptions()
	opts.connect = []string{contact}
	opts.protocols = []string{"tcp"} // a refused TCP dial fails at once; QUIC would wait
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	_, err := run(ctx, opts, io.Discard, io.Discard)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "connecting to") {
		t.Fatalf("run: %v (exit status %d), want a connect error with status 2", err, exitCode(err))
	}
}

func TestParseArgs(t *testing.T) {
	contact := "3j2kyoge3f3bfbnt5mksmudgwzqpyqde7v5vtp4wdozdtd5jpu4q@tcp://127.0.0.1:38479,quic://127.0.0.1:38479"
	tests := []struct {
		name  string
		args  []string
		check func(options) bool
		want  string // substring of the error; "" for none
	}{
		{"defaults", nil, func(o options) bool {
			return o.rate == 1000 && o.size == 64 && o.duration == 10*time.Second && o.to == toAll && o.peers == 1 &&
				slices.Equal(o.protocols, []string{"tcp", "quic"}) && slices.Equal(o.listen, []string{"127.0.0.1:0"}) &&
				!o.max && !o.expectNoLoss && o.logLevel == "warn"
		}, ""},
		{"everything", []string{"-connect", contact, "-connect", contact, "-rate", "50", "-size", "1024",
			"-duration", "3s", "-to", "first", "-peers", "2", "-protocols", "quic", "-listen", "127.0.0.1:0, [::1]:0",
			"-max", "-expect-no-loss", "-loglevel", "debug"}, func(o options) bool {
			return len(o.connect) == 2 && o.rate == 50 && o.size == 1024 && o.duration == 3*time.Second &&
				o.to == toFirst && o.peers == 2 && slices.Equal(o.protocols, []string{"quic"}) &&
				slices.Equal(o.listen, []string{"127.0.0.1:0", "[::1]:0"}) && o.max && o.expectNoLoss && o.logLevel == "debug"
		}, ""},
		{"bad contact", []string{"-connect", "nonsense"}, nil, "-connect"},
		{"message too small", []string{"-size", "15"}, nil, "-size 15"},
		{"message too large", []string{"-size", "16777216"}, nil, "-size 16777216"},
		{"zero rate", []string{"-rate", "0"}, nil, "-rate 0"},
		{"zero rate with -max", []string{"-rate", "0", "-max"}, func(o options) bool { return o.max }, ""},
		{"negative duration", []string{"-duration", "-1s"}, nil, "-duration"},
		{"unknown target", []string{"-to", "some"}, nil, `-to "some"`},
		{"negative peers", []string{"-peers", "-1"}, nil, "-peers -1"},
		{"unknown protocol", []string{"-protocols", "tcp,udp"}, nil, `"udp"`},
		{"no protocol", []string{"-protocols", ","}, nil, "-protocols"},
		{"no listen address", []string{"-listen", ""}, nil, "-listen"},
		{"unknown flag", []string{"-fast"}, nil, "-fast"},
		{"argument", []string{"now"}, nil, `unexpected argument "now"`},
		{"help", []string{"-h"}, nil, flag.ErrHelp.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			opts, err := parseArgs(tt.args, &stderr)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case tt.want == "" && !tt.check(opts):
				t.Fatalf("options %+v", opts)
			case tt.want != "" && !strings.Contains(stderr.String(), "Usage") && !strings.Contains(stderr.String(), tt.want):
				t.Errorf("stderr %q says neither the usage nor the error", stderr.String())
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fmt.Errorf("3 lost: %w", errLoss), 1},
		{errors.New("-size 8: want 16 to ..."), 2},
		{fmt.Errorf("starting the node: %w", errors.New("no listen address")), 2},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// A pipe is no terminal: the live line is then printed once a second as a line.
func TestIsTerminalOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe was taken for a terminal")
	}
}
