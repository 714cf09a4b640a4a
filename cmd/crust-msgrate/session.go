package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust"
)

// session is one run's node and the goroutines around it: one reading the node's
// events, which keeps the list of connected peers and starts and stops a sender per
// peer connection while the sending phase lasts, and those senders.
type session struct {
	opts options
	svc  *crust.Service
	rx   *receiver
	out  *screen
	log  *slog.Logger

	// sentMsgs and sentBytes count the messages queued to peers, and their bytes.
	sentMsgs, sentBytes atomic.Uint64

	mu sync.Mutex
	// connected are the connected peers, in the order they connected.
	connected []crust.NodeID
	// changed is closed and replaced whenever connected changes.
	changed chan struct{}
	// sendCtx is the sending phase's context: nil before it starts.
	sendCtx context.Context
	// stopped is set when the sending phase has ended: no sender starts after it.
	stopped bool
	// first is, with -to first, the one peer sent to once it is chosen.
	first crust.NodeID
	// targets are the peers sent to so far.
	targets map[crust.NodeID]*outPeer

	senders   sync.WaitGroup // one per peer connection sent to
	events    sync.WaitGroup // the events reader; ends when Close closes Events
	closeOnce sync.Once
}

// startSession starts the node on opts.listen, with the receiver counting its
// messages, and starts reading its events.
func startSession(opts options, log *slog.Logger, out *screen) (*session, error) {
	rx := newReceiver()
	svc, err := crust.New(crust.Config{
		ListenAddrs:   opts.listen,
		Protocols:     opts.protocols,
		OnMessage:     rx.handle,
		SendBlocks:    true,
		ShutdownGrace: time.Second,
		Log:           log,
		// A measuring tool: the per-peer inbound limit (1 M msgs/s by default) would
		// cap what -max measures.
		Limits: crust.Limits{PeerMessageRate: -1, PeerByteRate: -1},
	})
	if err != nil {
		return nil, err
	}
	s := &session{
		opts:    opts,
		svc:     svc,
		rx:      rx,
		out:     out,
		log:     log,
		changed: make(chan struct{}),
		targets: make(map[crust.NodeID]*outPeer),
	}
	s.events.Add(1)
	go s.readEvents()
	return s, nil
}

// close stops the senders, closes the node and waits for the events reader. Safe to
// call more than once.
func (s *session) close() {
	s.closeOnce.Do(func() {
		s.stopSending()
		if err := s.svc.Close(); err != nil {
			s.log.Warn("closing the node", "err", err)
		}
		s.events.Wait()
	})
}

// readEvents follows peers connecting and leaving until Close closes the channel.
// Messages go to the receiver (OnMessage), not here.
func (s *session) readEvents() {
	defer s.events.Done()
	for ev := range s.svc.Events() {
		switch ev := ev.(type) {
		case crust.PeerConnected:
			s.out.line("connected to %s via %s (rtt %v)", ev.ID.Short(), ev.Kind, ev.RTT.Round(time.Microsecond))
			s.peerConnected(ev.ID)
		case crust.PeerLost:
			s.out.line("disconnected from %s: %s", ev.ID.Short(), ev.Reason)
			s.peerLost(ev.ID)
		case crust.ListenerFailed:
			s.log.Warn("listener failed", "addr", ev.Addr, "err", ev.Err)
		default:
			s.log.Debug("event", "type", fmt.Sprintf("%T", ev))
		}
	}
}

// peerConnected adds id to the connected peers and, in the sending phase, starts
// sending to it if it is a target.
func (s *session) peerConnected(id crust.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.connected, id) {
		s.connected = append(s.connected, id)
	}
	s.notifyLocked()
	if s.sendCtx != nil && s.isTargetLocked(id) {
		s.startSenderLocked(id)
	}
}

// peerLost removes id from the connected peers and stops sending to it.
func (s *session) peerLost(id crust.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = slices.DeleteFunc(s.connected, func(c crust.NodeID) bool { return c == id })
	s.notifyLocked()
	if p := s.targets[id]; p != nil && p.cancel != nil {
		p.cancel()
	}
}

// notifyLocked wakes whoever waits for the connected peers to change.
func (s *session) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitPeers waits until n peers are connected, and reports whether they are (false
// when ctx ended first).
func (s *session) waitPeers(ctx context.Context, n int) bool {
	for {
		s.mu.Lock()
		have, changed := len(s.connected), s.changed
		s.mu.Unlock()
		if have >= n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// peerCount returns how many peers are connected.
func (s *session) peerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.connected)
}

// startSending starts the sending phase: a sender for each connected target now, and
// for each that connects later, until ctx ends.
func (s *session) startSending(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendCtx = ctx
	for _, id := range s.connected {
		if s.isTargetLocked(id) {
			s.startSenderLocked(id)
		}
	}
}

// stopSending ends the sending phase and waits for every sender to return: a sender
// blocked in Send on a full queue returns once the queue has room, or its connection
// or the node closes.
func (s *session) stopSending() {
	s.mu.Lock()
	s.stopped = true
	for _, p := range s.targets {
		if p.cancel != nil {
			p.cancel()
		}
	}
	s.mu.Unlock()
	s.senders.Wait()
}

// isTargetLocked reports whether we send to id: every peer with -to all; with -to
// first, the first connected peer, chosen when sending starts (or, with none, the
// first to connect after).
func (s *session) isTargetLocked(id crust.NodeID) bool {
	if s.opts.to == toAll {
		return true
	}
	if s.first.IsZero() {
		s.first = id
	}
	return s.first == id
}

// startSenderLocked starts sending to id on its new connection, unless the sending
// phase is over. The previous connection's sender, if any, is stopped, and the new one
// waits for it to end before it touches the peer's sequence number.
func (s *session) startSenderLocked(id crust.NodeID) {
	if s.stopped {
		return
	}
	p := s.targets[id]
	if p == nil {
		p = &outPeer{id: id}
		s.targets[id] = p
	}
	if p.cancel != nil {
		p.cancel()
	}
	prev := p.done
	ctx, cancel := context.WithCancel(s.sendCtx)
	done := make(chan struct{})
	p.cancel, p.done = cancel, done
	s.senders.Add(1)
	go func() {
		defer s.senders.Done()
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev
		}
		s.sendTo(ctx, p)
	}()
}

// targetCount returns how many peers were sent to.
func (s *session) targetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.targets)
}

// awaitQuiet waits, after sending ends, for what peers sent to finish arriving: until
// the receive count has not grown for quiet, or until maxWait has passed (a peer still
// sending does not hold us longer).
func (s *session) awaitQuiet(quiet, maxWait time.Duration) {
	start := time.Now()
	last, _ := s.rx.counts()
	lastGrew := start
	tick := time.NewTicker(max(quiet/5, time.Millisecond))
	defer tick.Stop()
	for now := range tick.C {
		if n, _ := s.rx.counts(); n != last {
			last, lastGrew = n, now
		}
		if now.Sub(lastGrew) >= quiet || now.Sub(start) >= maxWait {
			return
		}
	}
}

// totals returns the counts of messages and bytes sent and received so far.
func (s *session) totals() totals {
	msgs, bytes := s.rx.counts()
	return totals{sentMsgs: s.sentMsgs.Load(), sentBytes: s.sentBytes.Load(), recvMsgs: msgs, recvBytes: bytes}
}

// reportLive prints the live line once a second, the rates over the last second,
// until stop is closed.
func (s *session) reportLive(start time.Time, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev, prevAt := s.totals(), start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			cur := s.totals()
			s.out.live(formatLive(now.Sub(start), cur.sub(prev).rates(now.Sub(prevAt)), s.peerCount()))
			prev, prevAt = cur, now
		}
	}
}
