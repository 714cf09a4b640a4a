package main

import (
	"context"
	"fmt"
	"net"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/metrics"
)

// metricsEndpoint is the daemon's Prometheus endpoint: bound before the node starts,
// so that a bad or taken address stops the daemon before it talks to anyone, and
// served once the node runs. A nil *metricsEndpoint is the endpoint turned off; its
// methods do nothing.
type metricsEndpoint struct {
	ln        net.Listener
	collector *metrics.Collector
	cancel    context.CancelFunc
	stopped   chan struct{} // closed when Serve has returned
	err       error         // why Serve returned, once stopped is closed
}

// listenMetrics binds the endpoint at addr (metrics_addr); "" returns nil, off.
func listenMetrics(addr string) (*metricsEndpoint, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w; choose another metrics_addr or -metrics", err)
	}
	return &metricsEndpoint{ln: ln}, nil
}

// serve starts answering scrapes with svc's metrics, the Go runtime's and the
// process's.
func (m *metricsEndpoint) serve(svc *crust.Service) {
	if m == nil {
		return
	}
	m.collector = metrics.New(svc)
	reg := metrics.NewRegistry(m.collector)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.stopped = cancel, make(chan struct{})
	go func() {
		defer close(m.stopped)
		m.err = metrics.Serve(ctx, m.ln, reg)
	}()
}

// observe passes an event from the node to the collector (punch durations).
func (m *metricsEndpoint) observe(ev crust.Event) {
	if m != nil && m.collector != nil {
		m.collector.Observe(ev)
	}
}

// done is closed when the endpoint stops; never while it serves, nor when it is off.
func (m *metricsEndpoint) done() <-chan struct{} {
	if m == nil {
		return nil
	}
	return m.stopped
}

// addr is where the endpoint listens, "" when off.
func (m *metricsEndpoint) addr() string {
	if m == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// close stops the endpoint (closing its socket) and waits until it has stopped.
func (m *metricsEndpoint) close() {
	switch {
	case m == nil:
	case m.stopped == nil: // bound, never served
		m.ln.Close()
	default:
		m.cancel()
		<-m.stopped
	}
}
