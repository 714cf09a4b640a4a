package metrics_test

import (
	"context"
	"log"
	"net"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/metrics"
)

// A node's metrics at http://127.0.0.1:9464/metrics: the collector reads the Service
// at each scrape, and sees the events the application reads, for punch durations.
func Example() {
	svc, err := crust.New(crust.Config{ListenAddrs: []string{"127.0.0.1:0"}})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	col := metrics.New(svc)
	ln, err := net.Listen("tcp", "127.0.0.1:9464")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go metrics.Serve(ctx, ln, metrics.NewRegistry(col))
	for ev := range svc.Events() {
		col.Observe(ev)
		// ... and whatever the application does with the event
	}
}
