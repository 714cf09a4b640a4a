package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/metrics"
)

// Serve answers GET /metrics on 127.0.0.1 with crust's, Go's and the process's
// metrics, nothing else, and stops with its context, closing its socket.
func TestServe(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := &fakeSource{refused: map[string]uint64{"max-connections": 3}}
	src.set(peer(1, "quic-direct"))
	src.setTraffic(crust.Traffic{BytesIn: 10, BytesOut: 20, MsgsIn: 1, MsgsOut: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, ln, metrics.NewRegistry(metrics.New(src))) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + ln.Addr().String()
	get := func(method, path string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	code, ctype, body := get("GET", metrics.Path)
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("GET /metrics: %d, %q", code, ctype)
	}
	for _, line := range []string{
		`crust_connections{kind="quic-direct"} 1`,
		`crust_bytes_total{direction="out"} 20`,
		`crust_refused_total{reason="max-connections"} 3`,
		`# TYPE crust_punch_seconds histogram`,
		`# TYPE go_goroutines gauge`,
		`# TYPE process_cpu_seconds_total counter`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("GET /metrics lacks %q", line)
		}
	}
	if code, _, _ := get("GET", "/"); code != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404", code)
	}
	if code, _, _ := get("POST", metrics.Path); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", code)
	}

	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v, want context.Canceled", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the endpoint still accepts connections after Serve returned")
	}
}

// Serve returns at once, with the error, when it cannot serve on ln.
func TestServeClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := metrics.Serve(context.Background(), ln, metrics.NewRegistry(metrics.New(&fakeSource{}))); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Serve on a closed listener: %v, want its error", err)
	}
}
