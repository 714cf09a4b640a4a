package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// On a terminal the live line is rewritten in place, padded over a longer one before
// it, and a whole line ends it first; elsewhere every live line is a line.
func TestScreenLiveLine(t *testing.T) {
	for _, tt := range []struct {
		name     string
		terminal bool
		want     string
	}{
		{"terminal", true, "contact: x\n\rabc\rx  \nhello\n\rsecond\nsummary\n"},
		{"plain", false, "contact: x\nabc\nx\nhello\nsecond\nsummary\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := newScreen(&out, tt.terminal)
			s.line("contact: %s", "x")
			s.live("abc")
			s.live("x")
			s.line("hello")
			s.live("second")
			s.endLive()
			s.endLive() // no second newline
			s.text("summary\n")
			if out.String() != tt.want {
				t.Errorf("wrote %q\nwant  %q", out.String(), tt.want)
			}
		})
	}
}

func TestFormatLive(t *testing.T) {
	r := totals{sentMsgs: 2000, sentBytes: 128000, recvMsgs: 1999, recvBytes: 127936}.rates(2 * time.Second)
	got := formatLive(3*time.Second, r, 2)
	want := "    3s  out      1000 msg/s     0.06 MB/s  |  in      1000 msg/s     0.06 MB/s  |  2 peers"
	if got != want {
		t.Errorf("formatLive:\n got %q\nwant %q", got, want)
	}
	if got := formatLive(time.Second, rates{}, 1); !strings.HasSuffix(got, "|  1 peer") {
		t.Errorf("one peer: %q", got)
	}
	if (totals{sentMsgs: 5}).rates(0) != (rates{}) {
		t.Error("rates over no time are not zero")
	}
}

func TestTotalsSub(t *testing.T) {
	now := totals{10, 20, 30, 40}
	if got := now.sub(totals{1, 2, 3, 4}); got != (totals{9, 18, 27, 36}) {
		t.Errorf("sub = %+v", got)
	}
}

func TestResultFormat(t *testing.T) {
	// Latencies 0 to 1989 µs: the exact p50 is 994 µs, reported as the top of its
	// bucket (999.4 µs); the exact max, 1989 µs, caps the p99.
	var rx received
	rx.msgs, rx.bytes, rx.lost = 1990, 1990*64, 10
	for i := range 1990 {
		rx.latency.record(int64(i) * 1000)
	}
	res := newResult(2*time.Second, 1, 2000, 2000*64, rx)
	got := res.format()
	for _, want := range []string{
		"summary: sent for 2s to 1 peer\n",
		"  sent            2000 msgs       0.13 MB       1000 msg/s     0.06 MB/s\n",
		"  received        1990 msgs       0.13 MB        995 msg/s     0.06 MB/s\n",
		"  lost              10 msgs (0.500%)\n",
		"  latency   p50 999µs  p90 1.8ms  p99 1.99ms  max 1.99ms  (1990 msgs; receive minus send time, valid on one host)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "malformed") {
		t.Errorf("summary reports malformed messages when there are none:\n%s", got)
	}

	empty := newResult(time.Second, 0, 0, 0, received{malformed: 1, msgs: 1, bytes: 3})
	got = empty.format()
	for _, want := range []string{"to 0 peers", "lost               0 msgs (0.000%)", "malformed          1 msgs", "latency   none: no message arrived"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}

func TestRoundLatency(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{999, 999},
		{123456, 123 * time.Microsecond},
		{1234567, 1230 * time.Microsecond},
		{73_749, 73_700},
		{2*time.Second + 345*time.Millisecond, 2350 * time.Millisecond},
	} {
		if got := roundLatency(tt.in); got != tt.want {
			t.Errorf("roundLatency(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
