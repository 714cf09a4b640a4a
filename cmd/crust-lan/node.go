package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/cmd/internal/console"
	"github.com/crust-p2p/crust/transport/identity"
)

// runNode runs a crust node with the beacon on, sending to opts.addr only, and prints
// the nodes it discovers, the peers it connects to and loses, and their messages,
// until ctx ends. It says hello to each new peer.
func runNode(ctx context.Context, opts options, out *console.Printer, log *slog.Logger) error {
	ident, err := identity.Generate()
	if err != nil {
		return err
	}
	name := ident.ID().Short()
	log = log.With("node", name)

	// The node's own beacon socket is inside crust; a second socket on the shared port
	// hears the same broadcasts, which shows discovery before the connections. It is
	// opened first so as to hear the answers to the node's first query, and never sends.
	watch, err := beacon.Listen(ctx, beacon.Config{ID: ident.ID(), Port: opts.port, Addrs: []netip.Addr{opts.addr}, Logger: log})
	if err != nil {
		return err
	}
	defer watch.Close()

	svc, err := crust.New(crust.Config{
		Identity:      ident,
		ListenAddrs:   []string{opts.listen},
		BeaconAddrs:   []netip.Addr{opts.addr},
		BeaconPort:    opts.port,
		ShutdownGrace: time.Second,
		Log:           log,
	})
	if err != nil {
		return err
	}
	out.Line("node %s started, beacon to %s", name, netip.AddrPortFrom(opts.addr, opts.port))

	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() {
		seen := map[identity.NodeID]bool{}
		err := watch.Serve(watchCtx, func(p beacon.Packet, from netip.AddrPort) {
			if !seen[p.ID] {
				seen[p.ID] = true
				out.Line("discovered %s by its beacon %s from %s (tcp port %d, quic port %d)",
					p.ID.Short(), p.Type, from, p.TCPPort, p.QUICPort)
			}
		})
		if ended(err) != nil {
			log.Warn("beacon watch stopped", "err", err)
		}
	})

	connected := map[crust.NodeID]bool{} // every peer ever connected
	received := 0
	wg.Go(func() {
		for ev := range svc.Events() {
			switch ev := ev.(type) {
			case crust.ListenerStarted:
				out.Line("listening on %s", ev.Endpoint)
			case crust.ListenerFailed:
				out.Line("listener %s failed: %v", ev.Addr, ev.Err)
			case crust.PeerConnected:
				dir := "inbound"
				if ev.Outbound {
					dir = "outbound"
				}
				connected[ev.ID] = true
				out.Line("connected to %s via %s (%s, peer at %s, rtt %v)",
					ev.ID.Short(), ev.Kind, dir, ev.Addr, ev.RTT.Round(time.Microsecond))
				if err := svc.Send(ev.ID, []byte("hello from "+name)); err != nil {
					out.Line("hello to %s: %v", ev.ID.Short(), err)
				}
			case crust.PeerLost:
				out.Line("lost %s: %s", ev.ID.Short(), ev.Reason)
			case crust.Message:
				received++
				out.Line("message from %s: %q", ev.From.Short(), ev.Data)
			}
		}
	})

	<-ctx.Done()
	out.Line("stopping (%v)", context.Cause(ctx))
	svc.Close() // closes Events: the event reader ends
	stopWatch()
	wg.Wait()
	out.Line("node %s closed: connected to %d peers, received %d messages", name, len(connected), received)
	return nil
}
