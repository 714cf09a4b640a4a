package crust_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// The throughput benchmarks send b.N messages one way over loopback and count them
// at the receiver. Raw TCP and raw TLS use the same framing (package wire) with one
// writer and one reader goroutine: the floor crust's actors, queues and events are
// measured against. Compare with benchstat; the ratio crust/raw-TLS is the figure.
// The raw readers take each payload as a fresh slice (wire.Reader.ReadFrame), as
// crust's Events do; rawTLSLent reads with ReadFrameLent, the floor for crust's
// OnMessage, which lends each payload for the call.

var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

func BenchmarkThroughput(b *testing.B) {
	for _, s := range benchSizes {
		b.Run("crust/"+s.name, func(b *testing.B) { benchCrust(b, s.size, false) })
		b.Run("crustHandler/"+s.name, func(b *testing.B) { benchCrust(b, s.size, true) })
		b.Run("rawTLS/"+s.name, func(b *testing.B) { benchRaw(b, s.size, true, false) })
		b.Run("rawTLSLent/"+s.name, func(b *testing.B) { benchRaw(b, s.size, true, true) })
		b.Run("rawTCP/"+s.name, func(b *testing.B) { benchRaw(b, s.size, false, false) })
	}
}

var benchEventBuffer = 4096

func reportRate(b *testing.B, size int, start time.Time) {
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	b.ReportMetric(float64(b.N)*float64(size)/secs/1e6, "MB/s")
	b.ReportMetric(0, "ns/op") // the rates above are the figures; ns/op is their inverse
}

// benchCrust sends over two Services; the receiver counts Message events, or with
// handler set, calls to Config.OnMessage.
func benchCrust(b *testing.B, size int, handler bool) { benchCrustWith(b, size, handler, nil) }

func benchCrustWith(b *testing.B, size int, handler bool, protocols []string) {
	cfg := crust.Config{
		Protocols:   protocols,
		ListenAddrs: []string{"127.0.0.1:0"},
		SendBlocks:  true,
		Log:         slog.New(slog.DiscardHandler),
		EventBuffer: benchEventBuffer,
		// Faster than the default per-peer inbound limit (1 M msgs/s).
		Limits: crust.Limits{PeerMessageRate: -1, PeerByteRate: -1},
	}
	tx, err := crust.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	done := make(chan int, 1)
	if handler {
		got := 0
		cfg.OnMessage = func(crust.Message) {
			if got++; got == b.N {
				done <- got
			}
		}
	}
	rx, err := crust.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := tx.Connect(ctx, rx.Contact()); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, size)
	go func() {
		if handler {
			for range rx.Events() {
			}
			return
		}
		got := 0
		for ev := range rx.Events() {
			if _, ok := ev.(crust.Message); ok {
				got++
				if got == b.N {
					break
				}
			}
		}
		done <- got
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := tx.Send(rx.ID(), msg); err != nil {
			b.Fatal(err)
		}
	}
	if got := <-done; got != b.N {
		b.Fatalf("received %d of %d", got, b.N)
	}
	reportRate(b, size, start)
}

// benchRaw sends framed messages over raw TCP, or TLS with useTLS; with lend, the
// receiver reads with ReadFrameLent.
func benchRaw(b *testing.B, size int, useTLS, lend bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var srvCfg, cliCfg *tls.Config
	if useTLS {
		srvCfg, cliCfg = benchTLS(b), benchTLS(b)
	}
	done := make(chan int)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		defer c.Close()
		var r io.Reader = c
		if useTLS {
			r = tls.Server(c, srvCfg)
		}
		done <- countFrames(r, b.N, lend)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var w io.Writer = c
	if useTLS {
		tc := tls.Client(c, cliCfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		w = tc
	}
	sendFrames(b, w, size, done)
}

// sendFrames writes b.N Data frames of size bytes to w, then waits for the receiver's
// count on done and reports the rates.
func sendFrames(b *testing.B, w io.Writer, size int, done <-chan int) {
	fw := wire.NewWriter(w, 64<<10)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := fw.WriteData(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		b.Fatal(err)
	}
	if got := <-done; got != b.N {
		b.Fatalf("received %d of %d", got, b.N)
	}
	reportRate(b, size, start)
}

// countFrames reads up to n frames from r and returns how many it read; with lend,
// with ReadFrameLent.
func countFrames(r io.Reader, n int, lend bool) int {
	fr := wire.NewReader(r, 64<<10, wire.DefaultMaxFrameSize)
	read := fr.ReadFrame
	if lend {
		read = fr.ReadFrameLent
	}
	got := 0
	for got < n {
		if _, err := read(); err != nil {
			break
		}
		got++
	}
	return got
}

// BenchmarkQUIC sends b.N messages one way over crust with QUIC only, beside raw
// quic-go: one stream, the same framing, the same quic.Config limits.
func BenchmarkQUIC(b *testing.B) {
	for _, s := range benchSizes {
		b.Run("crust/"+s.name, func(b *testing.B) { benchCrustWith(b, s.size, false, []string{"quic"}) })
		b.Run("crustHandler/"+s.name, func(b *testing.B) { benchCrustWith(b, s.size, true, []string{"quic"}) })
		b.Run("rawQUIC/"+s.name, func(b *testing.B) { benchRawQUIC(b, s.size, false) })
		b.Run("rawQUICLent/"+s.name, func(b *testing.B) { benchRawQUIC(b, s.size, true) })
	}
}

// benchTLS returns the TLS config of a fresh node identity, as crust uses.
func benchTLS(b *testing.B) *tls.Config {
	id, err := identity.Generate()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := id.TLSConfig(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// benchRawQUIC sends framed messages over one quic-go stream; with lend, the receiver
// reads with ReadFrameLent.
func benchRawQUIC(b *testing.B, size int, lend bool) {
	srvCfg, cliCfg := benchTLS(b), benchTLS(b)
	qcfg := &quic.Config{MaxIncomingStreams: 1, MaxIncomingUniStreams: -1, KeepAlivePeriod: 10 * time.Second, MaxIdleTimeout: 30 * time.Second}
	ln, err := quic.ListenAddr("127.0.0.1:0", srvCfg, qcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int)
	go func() {
		ctx := context.Background()
		c, err := ln.Accept(ctx)
		if err != nil {
			done <- 0
			return
		}
		defer c.CloseWithError(0, "")
		st, err := c.AcceptStream(ctx)
		if err != nil {
			done <- 0
			return
		}
		done <- countFrames(st, b.N, lend)
	}()
	ctx := context.Background()
	c, err := quic.DialAddr(ctx, ln.Addr().String(), cliCfg, qcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sendFrames(b, st, size, done)
}
