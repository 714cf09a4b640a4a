package actors

import (
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
)

// repeater sends a message to an actor every interval, from a timer rather than a
// goroutine of its own: hollywood's SendRepeater keeps a goroutine (and its stack)
// per repeater, and every peer has one for its keepalive.
type repeater struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// sendEvery starts sending msg to pid every interval.
func sendEvery(e *actor.Engine, pid *actor.PID, msg any, interval time.Duration) *repeater {
	r := &repeater{}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t = time.AfterFunc(interval, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.stopped {
			return
		}
		e.Send(pid, msg)
		r.t.Reset(interval)
	})
	return r
}

// Stop stops the sends; one already on its way may still arrive.
func (r *repeater) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.t.Stop()
}
