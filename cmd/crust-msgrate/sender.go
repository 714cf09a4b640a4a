package main

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/crust-p2p/crust"
)

// paceTick is how often a paced sender wakes to send the messages that have come due:
// short enough that a rate is smooth at the scale of a second, long enough that
// waking costs little.
const paceTick = 5 * time.Millisecond

// outPeer is a peer we send to. At most one sender goroutine runs for it at a time
// (a new connection's sender waits for the old one's to end), and that goroutine
// owns seq.
type outPeer struct {
	id crust.NodeID
	// seq is the sequence number of the next message to the peer: the count of
	// messages queued to it so far, across its connections.
	seq uint64
	// cancel stops the current sender and done is closed when it has ended; both
	// nil before the first sender. Guarded by session.mu.
	cancel context.CancelFunc
	done   chan struct{}
}

// sendTo sends messages to p until ctx ends or p's connection is gone: at
// opts.rate per second, or with opts.max as fast as Send takes them.
func (s *session) sendTo(ctx context.Context, p *outPeer) {
	msg := newPayload(s.opts.size)
	send := func() bool {
		encodeHeader(msg, p.seq, time.Now().UnixNano())
		if err := s.svc.Send(p.id, msg); err != nil {
			if !errors.Is(err, crust.ErrNotConnected) && !errors.Is(err, crust.ErrClosed) {
				s.log.Warn("send failed; no more messages to this peer until it connects again", "peer", p.id.Short(), "err", err)
			}
			return false // a new PeerConnected starts a new sender
		}
		p.seq++
		s.sentMsgs.Add(1)
		s.sentBytes.Add(uint64(len(msg)))
		return true
	}
	if s.opts.max {
		sendFlat(ctx, send)
	} else {
		sendPaced(ctx, float64(s.opts.rate), send)
	}
}

// sendFlat calls send until it fails or ctx ends. Send blocks while the queue is full
// (crust.Config.SendBlocks), so this is as fast as the peer takes messages.
func sendFlat(ctx context.Context, send func() bool) {
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		if !send() {
			return
		}
	}
}

// sendPaced calls send rate times per second until it fails or ctx ends. It paces by
// the time elapsed since it started: each tick it sends every message that has come
// due since the last, so a late tick or a slow Send is caught up on at the next, and
// n seconds in it has sent rate × n messages, give or take a tick's worth. It counts
// no time past ctx's deadline, if it has one: a run of d seconds sends at most
// rate × d, however late the deadline's timer fires.
func sendPaced(ctx context.Context, rate float64, send func() bool) {
	start := time.Now()
	limit := time.Duration(math.MaxInt64)
	if deadline, ok := ctx.Deadline(); ok {
		limit = deadline.Sub(start)
	}
	tick := time.NewTicker(paceTick)
	defer tick.Stop()
	done := ctx.Done()
	var sent int64
	for {
		for due := messagesDue(rate, min(time.Since(start), limit)); sent < due; sent++ {
			select {
			case <-done:
				return
			default:
			}
			if !send() {
				return
			}
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// messagesDue returns how many messages a sender at rate per second has to have sent
// after elapsed.
func messagesDue(rate float64, elapsed time.Duration) int64 {
	return int64(rate * elapsed.Seconds())
}
