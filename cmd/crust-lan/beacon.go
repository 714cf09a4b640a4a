package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/cmd/internal/console"
	"github.com/crust-p2p/crust/transport/identity"
)

// openBeacon opens a beacon socket on opts.port under a fresh random NodeID, which is
// returned too. It sends only to opts.addr.
func openBeacon(ctx context.Context, opts options, log *slog.Logger) (*beacon.Conn, identity.NodeID, error) {
	ident, err := identity.Generate()
	if err != nil {
		return nil, identity.NodeID{}, err
	}
	conn, err := beacon.Listen(ctx, beacon.Config{
		ID:     ident.ID(),
		Port:   opts.port,
		Addrs:  []netip.Addr{opts.addr},
		Logger: log,
	})
	if err != nil {
		return nil, identity.NodeID{}, err
	}
	return conn, ident.ID(), nil
}

// runListen prints every beacon heard until ctx ends. It sends nothing.
func runListen(ctx context.Context, opts options, out *console.Printer, log *slog.Logger) error {
	conn, _, err := openBeacon(ctx, opts, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	out.Line("listening for beacons on udp port %d (sending nothing)", opts.port)
	heard := 0
	err = conn.Serve(ctx, func(p beacon.Packet, from netip.AddrPort) {
		heard++
		printPacket(out, p, from)
	})
	out.Line("stopped: heard %d beacons", heard)
	return ended(err)
}

// runBroadcast sends a Query and an Announce to opts.addr, then prints every Reply and
// Announce heard until ctx ends.
func runBroadcast(ctx context.Context, opts options, out *console.Printer, log *slog.Logger) error {
	conn, id, err := openBeacon(ctx, opts, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	// No listen ports: whoever hears us has nothing to dial.
	for _, t := range []beacon.Type{beacon.Query, beacon.Announce} {
		if err := conn.Send(beacon.Packet{Type: t, ID: id}); err != nil {
			return err
		}
	}
	// The socket is bound already, so answers that arrive before Serve reads wait in it.
	out.Line("sent a query and an announce as %s to %s", id.Short(), netip.AddrPortFrom(opts.addr, opts.port))
	nodes := map[identity.NodeID]bool{}
	err = conn.Serve(ctx, func(p beacon.Packet, from netip.AddrPort) {
		if p.Type == beacon.Query {
			return
		}
		nodes[p.ID] = true
		printPacket(out, p, from)
	})
	out.Line("stopped: heard from %d nodes", len(nodes))
	return ended(err)
}

// printPacket prints one beacon: type, sender, source, ports and contacts.
func printPacket(out *console.Printer, p beacon.Packet, from netip.AddrPort) {
	out.Line("heard %s from %s at %s: tcp port %d, quic port %d, %d contacts",
		p.Type, p.ID.Short(), from, p.TCPPort, p.QUICPort, len(p.Contacts))
	for _, c := range p.Contacts {
		out.Line("  contact %s", c)
	}
}

// ended turns the error of a Serve stopped by its context into nil.
func ended(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
