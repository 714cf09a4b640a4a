package actors

import (
	"sync/atomic"
	"testing"

	"github.com/anthdm/hollywood/actor"
)

// BenchmarkDataPath compares the two ways a message could travel from Send to the
// connection's writer: as an actor message through a hollywood mailbox (one inbox push
// and one Receive call per message), or through the peer's sendQueue, which the writer
// drains a whole batch at a time. crust uses the queue; the mailbox variant is the
// design it replaced, kept here to show the difference.
func BenchmarkDataPath(b *testing.B) {
	msg := make([]byte, 64)
	b.Run("mailbox", func(b *testing.B) {
		engine, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		done := make(chan struct{})
		target := int64(b.N)
		pid := engine.SpawnFunc(func(c *actor.Context) {
			if m, ok := c.Message().([]byte); ok {
				_ = append([]byte(nil), m...) // the copy Send makes
				if got.Add(1) == target {
					close(done)
				}
			}
		}, "sink")
		b.ResetTimer()
		for range b.N {
			engine.Send(pid, msg)
		}
		<-done
		b.StopTimer()
		<-engine.Poison(pid).Done()
	})
	b.Run("sendQueue", func(b *testing.B) {
		q := newSendQueue(4096, 16<<20) // the defaults
		ready := make(chan struct{}, 1)
		q.setWaker(func() {
			select {
			case ready <- struct{}{}:
			default:
			}
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for n := 0; n < b.N; {
				<-ready
				o := q.pop()
				n += o.msgs
				q.recycle(o)
			}
		}()
		b.ResetTimer()
		for range b.N {
			if err := q.push(msg, true, nil); err != nil {
				b.Fatal(err)
			}
		}
		<-done
	})
}
