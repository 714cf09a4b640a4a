// Command stun-test asks STUN servers for this host's external address, over UDP or
// TCP, the way a crust node does, and checks that the servers agree.
//
// Usage:
//
//	stun-test --tcp|--udp [--print-servers] [--no-check] [--default [--config PATH]]
//	          [--port N] [--timeout 5s] SERVER...
//
// Every server is asked from one local socket (UDP), or from one local port shared
// with a listener (TCP, SO_REUSEADDR|SO_REUSEPORT, as crust binds its listen port), so
// the answers describe one NAT mapping. It prints the external address, "ip:port", on
// one line; with --print-servers, "SERVER ADDR" for each server that answered. A
// server that fails prints "ERROR While resolving {server=SERVER}: <reason>" on
// standard error, and the exit status is 1. Unless --no-check is given, servers that
// report different addresses print "ERROR Previously resolved addresses do not match
// {server=..., address=..., previous=...}" and the exit status is 1: the NAT maps by
// destination ("symmetric"), or a server lies. --default takes the servers from the
// crust-node config (--config PATH, or the defaults, whose list is empty: crust uses
// no public STUN server unless told to), after any given on the command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/crust-p2p/crust/cmd/internal/config"
	"github.com/crust-p2p/crust/nat/stun"
	"github.com/crust-p2p/crust/transport"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: stun-test --tcp|--udp [--print-servers] [--no-check] [--default [--config PATH]] [--port N] SERVER...

Asks each STUN server (host:port) for this host's external address and prints it.
`

// options are stun-test's settings.
type options struct {
	udp, tcp     bool
	printServers bool
	noCheck      bool
	useDefault   bool
	configPath   string
	port         int
	timeout      time.Duration
	servers      []string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("stun-test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.udp, "udp", false, "STUN over UDP")
	fs.BoolVar(&o.tcp, "tcp", false, "STUN over TCP (RFC 5389 framing on a stream)")
	fs.BoolVar(&o.printServers, "print-servers", false, `print "SERVER ADDR" for each server instead of one address`)
	fs.BoolVar(&o.noCheck, "no-check", false, "do not fail when servers report different addresses")
	fs.BoolVar(&o.useDefault, "default", false, "also ask the servers of the crust-node config (stun_servers)")
	fs.StringVar(&o.configPath, "config", "", "crust-node config for --default (default: the built-in defaults)")
	fs.IntVar(&o.port, "port", 0, "local port to ask from (0: any)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for all the servers")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.udp == o.tcp {
		return o, errors.New("give exactly one of --udp and --tcp")
	}
	if o.port < 0 || o.port > 65535 {
		return o, fmt.Errorf("--port %d: want 0..65535", o.port)
	}
	o.servers = fs.Args()
	if o.useDefault {
		cfg := config.Default()
		if o.configPath != "" {
			f, err := os.Open(o.configPath)
			if err != nil {
				return o, err
			}
			cfg, err = config.Load(f, o.configPath)
			f.Close()
			if err != nil {
				return o, err
			}
		}
		o.servers = append(o.servers, cfg.StunServers...)
	}
	if len(o.servers) == 0 {
		if o.useDefault {
			return o, errors.New("no STUN servers: the config's stun_servers is empty (crust asks no public server unless told to); name servers on the command line or in the config")
		}
		return o, errors.New("name at least one STUN server, host:port")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stun-test: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	query, closeFn, err := newQuery(o)
	if err != nil {
		fmt.Fprintf(stderr, "stun-test: %v\n", err)
		return 1
	}
	outcomes, agreed, resolveErr := stun.Resolve(ctx, o.servers, query)
	closeFn()
	return report(o, outcomes, agreed, resolveErr, stdout, stderr)
}

// report prints what the servers said and returns the exit status.
func report(o options, outcomes []stun.Outcome, agreed netip.AddrPort, resolveErr error, stdout, stderr io.Writer) int {
	status := 0
	var first stun.Outcome
	for _, out := range outcomes {
		if out.Err != nil {
			fmt.Fprintf(stderr, "ERROR While resolving {server=%s}: %v\n", out.Server, out.Err)
			status = 1
			continue
		}
		if !first.Result.Mapped.IsValid() {
			first = out
			continue
		}
		if out.Result.Mapped != first.Result.Mapped && !o.noCheck {
			fmt.Fprintf(stderr, "ERROR Previously resolved addresses do not match {server=%s, address=%s, previous=%s, previous_server=%s}\n",
				out.Server, out.Result.Mapped, first.Result.Mapped, first.Server)
			status = 1
		}
	}
	if resolveErr != nil && !errors.Is(resolveErr, stun.ErrDisagree) && status == 0 {
		fmt.Fprintf(stderr, "ERROR %v\n", resolveErr)
		status = 1
	}
	if o.printServers {
		for _, out := range outcomes {
			if out.Err == nil {
				fmt.Fprintf(stdout, "%s %s\n", out.Server, out.Result.Mapped)
			}
		}
		return status
	}
	switch {
	case agreed.IsValid():
		fmt.Fprintln(stdout, agreed)
	case first.Result.Mapped.IsValid() && o.noCheck:
		fmt.Fprintln(stdout, first.Result.Mapped)
	}
	return status
}

// newQuery returns the function that asks one server, over one shared local socket
// (UDP) or port (TCP), and what closes that socket.
func newQuery(o options) (func(ctx context.Context, server string) (stun.Result, error), func(), error) {
	local := net.JoinHostPort("", strconv.Itoa(o.port))
	if o.tcp {
		// A listener holds the port, as a crust node's does; each server is dialled
		// from it.
		ln, err := transport.OSNet{}.Listen(context.Background(), "tcp", local)
		if err != nil {
			return nil, nil, fmt.Errorf("binding TCP %s: %w", local, err)
		}
		from := ln.Addr().String()
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return transport.OSNet{}.DialFrom(ctx, "tcp", from, addr)
		}
		query := func(ctx context.Context, server string) (stun.Result, error) {
			return stun.BindingTCP(ctx, dial, server)
		}
		return query, func() { ln.Close() }, nil
	}
	u, _, closeUDP, err := stun.ListenUDP(local)
	if err != nil {
		return nil, nil, err
	}
	query := func(ctx context.Context, server string) (stun.Result, error) {
		addr, err := stun.ResolveServer(ctx, server, "udp")
		if err != nil {
			return stun.Result{}, err
		}
		r, err := u.Binding(ctx, addr)
		r.Server = server
		return r, err
	}
	return query, closeUDP, nil
}
