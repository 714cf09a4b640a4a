package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/crust-p2p/crust/cmd/internal/console"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// runListenFor is SocketSynergy's listendemo: it listens, opens this host's own
// stateful firewall for opts.peer with one hop-limited SYN from the listen port, and
// prints every connection that comes in until ctx ends. The peer connects from
// opts.peer's port, so its SYN matches the state the SYN left in our firewall.
func runListenFor(ctx context.Context, opts options, p *console.Printer, log *slog.Logger) error {
	ident, err := identity.Generate()
	if err != nil {
		return err
	}
	tcp, err := transport.NewTCP(transport.TCPConfig{Common: transport.Common{Identity: ident, Log: log}})
	if err != nil {
		return err
	}
	lns, errs := tcp.Listen(ctx, []string{opts.listen})
	if len(lns) == 0 {
		return fmt.Errorf("listening on %s: %v", opts.listen, errs)
	}
	ln := lns[0]
	defer ln.Close()
	p.Line("listening on %s", ln.Endpoint().Addr)

	hops := opts.hops
	if hops < 0 {
		routers, err := transport.HopsTo(ctx, opts.peer, 16)
		switch {
		case err != nil:
			hops = 2
			p.Line("could not count the routers to %s (%v); hop limit %d", opts.peer.Addr(), err, hops)
		case routers == 0:
			hops = 0
			p.Line("%s is on our link: no router, no firewall to open", opts.peer.Addr())
		default:
			hops = min(2, routers)
			p.Line("%d router(s) before %s: hop limit %d (past our first router, short of the peer)", routers, opts.peer.Addr(), hops)
		}
	}
	if hops > 0 {
		err := tcp.OpenFirewall(ctx, opts.peer, hops)
		switch {
		case errors.Is(err, transport.ErrFirewallPunchReset):
			p.Line("hop limit %d reached the peer's side: it answered with a reset, which closes the hole again", hops)
		case err != nil:
			return fmt.Errorf("opening the firewall: %w", err)
		default:
			p.Line("firewall opened for %s with a SYN of hop limit %d from port %d", opts.peer, hops, ln.Endpoint().Addr.Port())
		}
	} else {
		p.Line("no firewall-opening SYN sent")
	}

	accepted := make(chan transport.Incoming)
	go func() {
		defer close(accepted)
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- in
		}
	}()
	for {
		select {
		case <-ctx.Done():
			ln.Close()
			for in := range accepted {
				in.Close()
			}
			return nil
		case in, ok := <-accepted:
			if !ok {
				return nil
			}
			p.Line("accepted a connection from %s", in.RemoteAddr())
			in.Close()
		}
	}
}
