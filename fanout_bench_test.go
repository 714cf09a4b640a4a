package crust_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
)

// fanoutPeers is how many receivers BenchmarkFanout's sender is connected to.
const fanoutPeers = 100

// BenchmarkFanout measures one node sending to many: a sender connected to
// fanoutPeers receivers on loopback sends, each iteration, one 1 KiB message to every
// receiver (Send with SendBlocks), and the benchmark ends when every message has
// arrived. The figure is msgs/s: messages delivered per second, the wait for the last
// ones included. Receivers count in OnMessage. Starting and connecting the nodes is
// not timed.
func BenchmarkFanout(b *testing.B) {
	for _, proto := range []string{"tcp", "quic"} {
		b.Run(proto, func(b *testing.B) { benchFanout(b, proto) })
	}
}

func benchFanout(b *testing.B, proto string) {
	ignore := goleak.IgnoreCurrent()
	cfg := crust.Config{
		ListenAddrs: []string{"127.0.0.1:0"},
		Protocols:   []string{proto},
		SendBlocks:  true,
		Log:         slog.New(slog.DiscardHandler),
		Limits:      crust.Limits{SourceRate: -1}, // 100 peers connect from 127.0.0.1
	}
	var nodes []*crust.Service // the sender first, so that it says Goodbye first
	var drained sync.WaitGroup
	start := func(cfg crust.Config) *crust.Service {
		svc, err := crust.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, svc)
		drained.Go(func() {
			for range svc.Events() {
			}
		})
		return svc
	}
	// Registered first, so it runs after the nodes are closed.
	b.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
		drained.Wait()
		goleak.VerifyNone(b, ignore)
	})

	var (
		delivered atomic.Int64
		want      atomic.Int64 // -1 until the sending is over
		allIn     = make(chan struct{})
		once      sync.Once
	)
	want.Store(-1)
	arrived := func() {
		if delivered.Add(1) == want.Load() {
			once.Do(func() { close(allIn) })
		}
	}
	tx := start(cfg)
	received := make([]atomic.Int64, fanoutPeers)
	ids := make([]crust.NodeID, fanoutPeers)
	for i := range fanoutPeers {
		rcfg := cfg
		rcfg.OnMessage = func(crust.Message) {
			received[i].Add(1)
			arrived()
		}
		rx := start(rcfg)
		ids[i] = rx.ID()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tx.Connect(ctx, rx.Contact())
		cancel()
		if err != nil {
			b.Fatalf("connecting receiver %d: %v", i, err)
		}
	}

	msg := make([]byte, 1<<10)
	rounds := 0
	began := time.Now()
	for b.Loop() {
		for _, id := range ids {
			if err := tx.Send(id, msg); err != nil {
				b.Fatal(err)
			}
		}
		rounds++
	}
	// The last arrival may come before want is stored: then this check sees it, and
	// if it comes after, the arrival sees want. Either may close allIn, once.
	total := int64(rounds) * fanoutPeers
	want.Store(total)
	if delivered.Load() == total {
		once.Do(func() { close(allIn) })
	}
	select {
	case <-allIn:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages arrived within a minute", delivered.Load(), total)
	}
	secs := time.Since(began).Seconds()
	for i := range received {
		if got := received[i].Load(); got != int64(rounds) {
			b.Errorf("receiver %d got %d messages, want %d", i, got, rounds)
		}
	}
	b.ReportMetric(float64(total)/secs, "msgs/s")
	b.ReportMetric(0, "ns/op") // per round of fanoutPeers sends, without the wait for the last arrivals
}
