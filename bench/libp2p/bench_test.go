package libp2pbench

import (
	"testing"
	"time"
)

// The benchmarks compare four implementations: crust and go-libp2p, each over
// TCP+TLS 1.3 and over QUIC. Throughput sends b.N messages one way and counts them
// at the receiver; Setup times one dial to a usable connection. Nodes and hosts are
// set up before the timer starts and closed by b.Cleanup.

var messageSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// deliveryTimeout bounds the wait for the receiver to count every message: a
// benchmark whose messages stop arriving fails instead of hanging.
const deliveryTimeout = 2 * time.Minute

// connectTimeout bounds one dial, and the wait for a connection to be gone.
const connectTimeout = 10 * time.Second

func BenchmarkThroughput(b *testing.B) {
	impls := []struct {
		name string
		run  func(b *testing.B, size int)
	}{
		{"crust-tcp", func(b *testing.B, size int) { benchCrustThroughput(b, "tcp", size) }},
		{"libp2p-tcp", func(b *testing.B, size int) { benchLibp2pThroughput(b, "tcp", size) }},
		{"crust-quic", func(b *testing.B, size int) { benchCrustThroughput(b, "quic", size) }},
		{"libp2p-quic", func(b *testing.B, size int) { benchLibp2pThroughput(b, "quic", size) }},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			for _, s := range messageSizes {
				b.Run(s.name, func(b *testing.B) { impl.run(b, s.size) })
			}
		})
	}
}

func BenchmarkSetup(b *testing.B) {
	impls := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"crust-tcp", func(b *testing.B) { benchCrustSetup(b, "tcp") }},
		{"crust-quic", func(b *testing.B) { benchCrustSetup(b, "quic") }},
		{"libp2p-tcp", func(b *testing.B) { benchLibp2pSetup(b, "tcp") }},
		{"libp2p-quic", func(b *testing.B) { benchLibp2pSetup(b, "quic") }},
		{"raw-tls", func(b *testing.B) { benchRawTLSSetup(b, false) }},
		{"raw-tls-confirmed", func(b *testing.B) { benchRawTLSSetup(b, true) }},
	}
	for _, impl := range impls {
		b.Run(impl.name, impl.run)
	}
}

// waitDelivered waits for the receiver's count of whole messages on counted and
// fails the benchmark unless it is b.N, then reports the message rate. The bytes
// rate comes from b.SetBytes.
func waitDelivered(b *testing.B, counted <-chan int) {
	select {
	case got := <-counted:
		if got != b.N {
			b.Fatalf("received %d of %d messages", got, b.N)
		}
	case <-time.After(deliveryTimeout):
		b.Fatalf("received fewer than %d messages in %s", b.N, deliveryTimeout)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// waitUntil polls done until it holds or connectTimeout passes; what is named what
// it waits for, for the failure message. It runs with the timer stopped.
func waitUntil(b *testing.B, what string, done func() bool) {
	deadline := time.Now().Add(connectTimeout)
	for !done() {
		if time.Now().After(deadline) {
			b.Fatalf("waiting for %s: still not done after %s", what, connectTimeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
