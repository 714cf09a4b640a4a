package upnp

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is Config.Now and Config.After under the test's control: time stands
// still until the test fires the pending timer, which moves now to its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is added
}

type fakeTimer struct {
	at time.Time
	d  time.Duration
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.pending = append(c.pending, fakeTimer{at: c.now.Add(d), d: d, c: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// waitTimer waits until a timer is pending and returns its duration. The Mapper
// asks for a timer only once a step is over, so this also waits for the step.
func (c *fakeClock) waitTimer(t testing.TB) time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		changed := c.changed
		if len(c.pending) > 0 {
			d := c.pending[0].d
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("fake clock: waited 10 s for the Mapper to ask for a timer")
		}
	}
}

// fire waits for the pending timer, fires it and returns its duration.
func (c *fakeClock) fire(t testing.TB) time.Duration {
	t.Helper()
	c.waitTimer(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := c.pending[0]
	c.pending = c.pending[1:]
	c.now = tm.at
	tm.c <- tm.at
	return tm.d
}

// expectTimer waits for the pending timer and checks its duration.
func (c *fakeClock) expectTimer(t testing.TB, want time.Duration) {
	t.Helper()
	if got := c.waitTimer(t); got != want {
		t.Fatalf("Mapper waits %v, want %v", got, want)
	}
}
