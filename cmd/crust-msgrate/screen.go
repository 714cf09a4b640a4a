package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// screen writes crust-msgrate's output from any goroutine: whole lines, and the live
// line. On a terminal the live line is rewritten in place (a carriage return, then the
// new text padded with spaces over the old), and a whole line first ends it; elsewhere
// each live line is a line of its own.
type screen struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	// liveWidth is the length of the live line on the terminal; 0 when none is open.
	liveWidth int
}

// newScreen returns a screen writing to w, a terminal or not.
func newScreen(w io.Writer, terminal bool) *screen { return &screen{w: w, terminal: terminal} }

// line prints one line.
func (s *screen) line(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLiveLocked()
	fmt.Fprintf(s.w, format+"\n", args...)
}

// text prints text as it is: whole lines, each ending in a newline.
func (s *screen) text(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLiveLocked()
	io.WriteString(s.w, text)
}

// live prints text as the live line.
func (s *screen) live(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.terminal {
		fmt.Fprintln(s.w, text)
		return
	}
	fmt.Fprintf(s.w, "\r%-*s", s.liveWidth, text)
	s.liveWidth = max(len(text), 1)
}

// endLive ends the live line, if one is open, so that what follows starts a line.
func (s *screen) endLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLiveLocked()
}

// endLiveLocked is endLive with s.mu held.
func (s *screen) endLiveLocked() {
	if s.liveWidth > 0 {
		fmt.Fprintln(s.w)
		s.liveWidth = 0
	}
}

// totals are counts of messages and payload bytes, each way.
type totals struct {
	sentMsgs, sentBytes, recvMsgs, recvBytes uint64
}

// sub returns the counts since earlier.
func (t totals) sub(earlier totals) totals {
	return totals{
		sentMsgs:  t.sentMsgs - earlier.sentMsgs,
		sentBytes: t.sentBytes - earlier.sentBytes,
		recvMsgs:  t.recvMsgs - earlier.recvMsgs,
		recvBytes: t.recvBytes - earlier.recvBytes,
	}
}

// rates are messages and megabytes (10^6 bytes) per second, each way.
type rates struct {
	sentMsgs, sentMB, recvMsgs, recvMB float64
}

// rates returns the counts per second over d; zero rates for d ≤ 0.
func (t totals) rates(d time.Duration) rates {
	if d <= 0 {
		return rates{}
	}
	secs := d.Seconds()
	return rates{
		sentMsgs: float64(t.sentMsgs) / secs,
		sentMB:   float64(t.sentBytes) / 1e6 / secs,
		recvMsgs: float64(t.recvMsgs) / secs,
		recvMB:   float64(t.recvBytes) / 1e6 / secs,
	}
}

// formatLive returns the live line: the time since sending started, the rates each
// way, and the connected peers.
func formatLive(elapsed time.Duration, r rates, peers int) string {
	return fmt.Sprintf("%5.0fs  out %9.0f msg/s %8.2f MB/s  |  in %9.0f msg/s %8.2f MB/s  |  %s",
		elapsed.Seconds(), r.sentMsgs, r.sentMB, r.recvMsgs, r.recvMB, plural(peers, "peer"))
}

// result is what a run measured.
type result struct {
	// elapsed is how long the sending phase lasted.
	elapsed time.Duration
	// peers is how many peers were sent to.
	peers int
	// counts are the messages and bytes queued to peers, and those that arrived.
	counts totals
	// lost and malformed are as in received.
	lost, malformed uint64
	// p50, p90, p99 and max are the latency percentiles; samples is how many latencies
	// they are drawn from.
	p50, p90, p99, max time.Duration
	samples            uint64
}

// newResult returns the result of a sending phase of elapsed to peers peers, with
// sentMsgs messages of sentBytes bytes sent and rx what arrived.
func newResult(elapsed time.Duration, peers int, sentMsgs, sentBytes uint64, rx received) result {
	return result{
		elapsed:   elapsed,
		peers:     peers,
		counts:    totals{sentMsgs: sentMsgs, sentBytes: sentBytes, recvMsgs: rx.msgs, recvBytes: rx.bytes},
		lost:      rx.lost,
		malformed: rx.malformed,
		p50:       rx.latency.percentile(50),
		p90:       rx.latency.percentile(90),
		p99:       rx.latency.percentile(99),
		max:       time.Duration(rx.latency.max),
		samples:   rx.latency.total,
	}
}

// format returns the summary, several lines. Rates are over the sending phase.
func (r result) format() string {
	var b strings.Builder
	c, perSec := r.counts, r.counts.rates(r.elapsed)
	fmt.Fprintf(&b, "summary: sent for %v to %s\n", r.elapsed.Round(time.Millisecond), plural(r.peers, "peer"))
	fmt.Fprintf(&b, "  sent      %10d msgs %10.2f MB  %9.0f msg/s %8.2f MB/s\n",
		c.sentMsgs, float64(c.sentBytes)/1e6, perSec.sentMsgs, perSec.sentMB)
	fmt.Fprintf(&b, "  received  %10d msgs %10.2f MB  %9.0f msg/s %8.2f MB/s\n",
		c.recvMsgs, float64(c.recvBytes)/1e6, perSec.recvMsgs, perSec.recvMB)
	lossPct := 0.0
	if expected := c.recvMsgs - r.malformed + r.lost; expected > 0 {
		lossPct = 100 * float64(r.lost) / float64(expected)
	}
	fmt.Fprintf(&b, "  lost      %10d msgs (%.3f%%)\n", r.lost, lossPct)
	if r.malformed > 0 {
		fmt.Fprintf(&b, "  malformed %10d msgs (shorter than %d bytes: not from crust-msgrate)\n", r.malformed, headerSize)
	}
	if r.samples == 0 {
		b.WriteString("  latency   none: no message arrived\n")
	} else {
		fmt.Fprintf(&b, "  latency   p50 %v  p90 %v  p99 %v  max %v  (%d msgs; receive minus send time, valid on one host)\n",
			roundLatency(r.p50), roundLatency(r.p90), roundLatency(r.p99), roundLatency(r.max), r.samples)
	}
	return b.String()
}

// roundLatency rounds d to three significant digits: the histogram is no more precise.
func roundLatency(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit)
}

// plural returns "1 peer" or "n peers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
