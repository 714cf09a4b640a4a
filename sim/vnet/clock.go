package vnet

import (
	"container/heap"
	"sync"
	"time"
)

// Scheduler tells the time and runs functions later. Every packet hop in a Network
// goes through it, so a VirtualClock makes whole runs deterministic.
type Scheduler interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once d has passed. stop cancels the call and reports whether
	// it did so (false if f already ran or was stopped).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

var (
	_ Scheduler = RealClock{}
	_ Scheduler = (*VirtualClock)(nil)
)

// RealClock is the Scheduler of the wall clock: time.Now and time.AfterFunc. Its
// callbacks run on their own goroutines, so packets on zero-latency links may be
// reordered, as on a real network.
type RealClock struct{}

// Now implements Scheduler.
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc implements Scheduler.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// VirtualEpoch is where a VirtualClock starts unless told otherwise: a fixed instant,
// so that traces of two runs compare equal.
var VirtualEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// VirtualClock is a Scheduler whose time moves only when Advance or RunUntilIdle is
// called. Due functions run on the caller's goroutine in order of time; functions due
// at the same instant run in the order they were scheduled. A function may schedule
// more functions; those that fall due within the same Advance run in it too.
//
// Advance and RunUntilIdle are serialised; calling either from a scheduled function
// deadlocks.
type VirtualClock struct {
	run sync.Mutex // held while Advance or RunUntilIdle runs functions

	mu     sync.Mutex
	now    time.Time
	seq    uint64
	events eventQueue
}

// NewVirtualClock returns a VirtualClock that reads start; the zero time means
// VirtualEpoch.
func NewVirtualClock(start time.Time) *VirtualClock {
	if start.IsZero() {
		start = VirtualEpoch
	}
	return &VirtualClock{now: start}
}

// Now implements Scheduler.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements Scheduler. A negative d counts as zero: f runs at the next
// Advance or RunUntilIdle, never inside AfterFunc.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	ev := &event{at: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	heap.Push(&c.events, ev)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if ev.index < 0 {
			return false // ran or stopped already
		}
		heap.Remove(&c.events, ev.index)
		return true
	}
}

// Advance moves time forward by d, running every function that falls due on the way
// at its own instant. Time ends at exactly Now()+d.
func (c *VirtualClock) Advance(d time.Duration) {
	c.run.Lock()
	defer c.run.Unlock()
	c.mu.Lock()
	end := c.now.Add(max(d, 0))
	c.mu.Unlock()
	for c.step(end) {
	}
	c.mu.Lock()
	c.now = end
	c.mu.Unlock()
}

// RunUntilIdle runs scheduled functions, moving time to each, until none is left. It
// never returns while something keeps rescheduling itself (a periodic timer).
func (c *VirtualClock) RunUntilIdle() {
	c.run.Lock()
	defer c.run.Unlock()
	for c.step(time.Time{}) {
	}
}

// Pending reports how many functions are scheduled and not yet run.
func (c *VirtualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// step runs the earliest scheduled function if it is due by end (the zero end means
// no limit) and reports whether it ran one.
func (c *VirtualClock) step(end time.Time) bool {
	c.mu.Lock()
	if len(c.events) == 0 || (!end.IsZero() && c.events[0].at.After(end)) {
		c.mu.Unlock()
		return false
	}
	ev := heap.Pop(&c.events).(*event)
	if ev.at.After(c.now) {
		c.now = ev.at
	}
	c.mu.Unlock()
	ev.f() // without the lock: f may schedule more
	return true
}

// event is one scheduled function.
type event struct {
	at    time.Time
	seq   uint64 // breaks ties between equal times: first scheduled runs first
	f     func()
	index int // position in the heap; -1 once popped or removed
}

// eventQueue is a min-heap of events by (at, seq).
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }

func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}

func (q eventQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}

func (q *eventQueue) Push(x any) {
	ev := x.(*event)
	ev.index = len(*q)
	*q = append(*q, ev)
}

func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	old[len(old)-1] = nil
	ev.index = -1
	*q = old[:len(old)-1]
	return ev
}
