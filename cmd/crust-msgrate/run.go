package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/cmd/internal/console"
)

// connectTimeout bounds each -connect: the connection ladder's steps, if the direct
// ones fail, take a few seconds each.
const connectTimeout = 30 * time.Second

// run starts the node, prints its contact, joins opts.connect, waits for opts.peers
// peers, sends for opts.duration (or until ctx ends), waits for the last messages to
// arrive and prints the summary; output goes to stdout, logs to stderr. It returns
// what it measured, with errLoss if messages were lost under opts.expectNoLoss; any
// other error means bad options or a node that could not start or connect. It returns
// only after the node is closed and every goroutine it started has ended.
func run(ctx context.Context, opts options, stdout, stderr io.Writer) (result, error) {
	if err := opts.validate(); err != nil {
		return result{}, err
	}
	contacts, err := opts.contacts()
	if err != nil {
		return result{}, err
	}
	log, err := console.NewLogger(opts.logLevel, stderr)
	if err != nil {
		return result{}, err
	}
	out := newScreen(stdout, opts.terminal)
	s, err := startSession(opts, log, out)
	if err != nil {
		return result{}, fmt.Errorf("starting the node: %w", err)
	}
	defer s.close() // on an early return; a no-op after the close below
	out.line("contact: %s", s.svc.Contact())
	for _, c := range contacts {
		if err := connect(ctx, s.svc, c); err != nil {
			return result{}, err
		}
	}
	if len(s.svc.Peers()) < opts.peers {
		out.line("waiting for %s to connect", plural(opts.peers, "peer"))
	}
	if !s.waitPeers(ctx, opts.peers) {
		out.line("stopped before %s connected: nothing sent", plural(opts.peers, "peer"))
		return result{}, nil
	}
	res := s.measure(ctx)
	s.close() // first, so that the peers' goodbyes come before the summary
	out.text(res.format())
	if opts.expectNoLoss && res.lost > 0 {
		return res, fmt.Errorf("%d lost: %w", res.lost, errLoss)
	}
	return res, nil
}

// connect joins the node at c, within connectTimeout.
func connect(ctx context.Context, svc *crust.Service, c crust.Contact) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := svc.Connect(ctx, c); err != nil {
		return fmt.Errorf("connecting to %s (is the other instance running, and is its contact current?): %w", c.ID.Short(), err)
	}
	return nil
}

// measure runs the sending phase, for opts.duration or until ctx ends, printing the
// live line; then it waits for the peers' last messages to arrive and returns what
// was measured.
func (s *session) measure(ctx context.Context) result {
	s.out.line("%s", s.opts.describe())
	start := time.Now()
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.opts.duration > 0 {
		sendCtx, cancel = context.WithDeadline(sendCtx, start.Add(s.opts.duration))
		defer cancel()
	}
	stopLive := make(chan struct{})
	var live sync.WaitGroup
	live.Go(func() { s.reportLive(start, stopLive) })

	s.startSending(sendCtx)
	<-sendCtx.Done()
	elapsed := time.Since(start)
	s.stopSending()
	s.awaitQuiet(s.opts.quiet, s.opts.maxGrace)

	close(stopLive)
	live.Wait()
	s.out.endLive()
	if ctx.Err() != nil {
		s.out.line("interrupted after %v", elapsed.Round(time.Millisecond))
	}
	return newResult(elapsed, s.targetCount(), s.sentMsgs.Load(), s.sentBytes.Load(), s.rx.snapshot())
}

// describe says what the sending phase does, in a line.
func (o options) describe() string {
	pace := fmt.Sprintf("%d msg/s", o.rate)
	if o.max {
		pace = "as fast as possible"
	}
	to := "each peer"
	if o.to == toFirst {
		to = "the first peer"
	}
	until := "until Ctrl-C"
	if o.duration > 0 {
		until = "for " + o.duration.String()
	}
	return fmt.Sprintf("sending %d-byte messages to %s, %s, %s", o.size, to, pace, until)
}
