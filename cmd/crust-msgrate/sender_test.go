package main

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/crust-p2p/crust"
)

// A paced sender sends rate messages per second, spread over the second, and keeps the
// rate after a stall by catching up.
func TestSendPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+time.Millisecond)
		defer cancel()
		start := time.Now()
		var at []time.Duration // when each message was sent
		sendPaced(ctx, 1000, func() bool {
			at = append(at, time.Since(start))
			if len(at) == 500 {
				time.Sleep(300 * time.Millisecond) // a slow Send (fake time)
			}
			return true
		})
		if len(at) != 2000 {
			t.Fatalf("sent %d messages in 2 s at 1000/s, want 2000", len(at))
		}
		firstSecond := 0
		for _, d := range at {
			if d <= time.Second {
				firstSecond++
			}
		}
		if firstSecond != 1000 {
			t.Errorf("sent %d in the first second, despite the stall, want 1000", firstSecond)
		}
		if first := at[0]; first > paceTick {
			t.Errorf("the first message went after %v, want within a tick (%v)", first, paceTick)
		}
	})
}

// lateContext reports a deadline before its Done channel closes, as a context does
// when its timer fires late.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

// A paced sender counts no time past its context's deadline, even while the context
// has not ended yet: a run of 1 s at 1000/s sends 1000 messages, not one more.
func TestSendPacedStopsCountingAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		late := lateContext{Context: ctx, deadline: time.Now().Add(time.Second)}
		sent := 0
		sendPaced(late, 1000, func() bool { sent++; return true })
		if sent != 1000 {
			t.Errorf("sent %d messages, want the 1000 due by the deadline", sent)
		}
	})
}

// A paced or unpaced sender stops at the first failed send (the peer is gone) and when
// its context ends.
func TestSendersStop(t *testing.T) {
	for _, tt := range []struct {
		name string
		loop func(context.Context, func() bool)
	}{
		{"flat", sendFlat},
		{"paced", func(ctx context.Context, send func() bool) { sendPaced(ctx, 1e6, send) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				tt.loop(context.Background(), func() bool { calls++; return calls < 10 })
				if calls != 10 {
					t.Errorf("send called %d times after failing at the 10th", calls)
				}
				ctx, cancel := context.WithCancel(context.Background())
				calls = 0
				tt.loop(ctx, func() bool {
					if calls++; calls == 5 {
						cancel()
					}
					return true
				})
				if calls != 5 {
					t.Errorf("send called %d times, want 5: the context ended at the 5th", calls)
				}
			})
		})
	}
}

func TestMessagesDue(t *testing.T) {
	for _, tt := range []struct {
		rate    float64
		elapsed time.Duration
		want    int64
	}{
		{1000, 0, 0},
		{1000, 999 * time.Microsecond, 0},
		{1000, time.Millisecond, 1},
		{1000, 2 * time.Second, 2000},
		{3, 500 * time.Millisecond, 1},
	} {
		if got := messagesDue(tt.rate, tt.elapsed); got != tt.want {
			t.Errorf("messagesDue(%v, %v) = %d, want %d", tt.rate, tt.elapsed, got, tt.want)
		}
	}
}

// With -to all every peer is a target; with -to first only the first one chosen, even
// after it reconnects.
func TestTargets(t *testing.T) {
	a, b := crust.NodeID{1}, crust.NodeID{2}
	for _, tt := range []struct {
		to   string
		want []bool // for a, b, a
	}{
		{toAll, []bool{true, true, true}},
		{toFirst, []bool{true, false, true}},
	} {
		s := &session{opts: options{to: tt.to}}
		for i, id := range []crust.NodeID{a, b, a} {
			if got := s.isTargetLocked(id); got != tt.want[i] {
				t.Errorf("-to %s: peer %d is a target: %v, want %v", tt.to, i, got, tt.want[i])
			}
		}
	}
}
