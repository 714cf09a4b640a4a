package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where Serve answers: the path Prometheus scrapes by default.
const Path = "/metrics"

// shutdownGrace bounds how long Serve waits for scrapes in progress once ctx is done.
const shutdownGrace = time.Second

// readHeaderTimeout bounds a request's headers, so that idle clients cannot hold
// connections open.
const readHeaderTimeout = 10 * time.Second

// NewRegistry returns a registry of its own, not Prometheus's global one, holding c
// and the Go runtime and process collectors (go_*, process_*).
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve answers GET /metrics on ln with g's metrics, in the format the scraper asks
// for (Prometheus text by default), until ctx is done; then it closes ln, lets the
// scrapes in progress finish (for up to a second) and returns ctx.Err(). If the
// server stops on its own first, Serve returns why. Other paths are not found.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		srv.Close() // scrapes still running after the grace: cut them off
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}
