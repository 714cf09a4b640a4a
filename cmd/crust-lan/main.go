// Command crust-lan shows crust's LAN discovery: the beacon on UDP port 5483.
//
// It runs in one of three modes, named by the first argument:
//
//   - listen: print every beacon heard (type, sender's short NodeID, source address,
//     TCP and QUIC ports, bootstrap contacts). It sends nothing.
//   - broadcast: send one Query and one Announce under a fresh random NodeID, then
//     print every Reply and Announce heard.
//   - node: run a full crust node with the beacon on; print the nodes it discovers by
//     beacon, the peers it connects to and loses, and their messages. It sends a hello
//     to each new peer.
//
// Several crust-lan processes (and crust nodes) on one host share the beacon port, and
// each hears every beacon. Beacons go only to the broadcast address -addr; the default,
// 127.255.255.255, keeps every packet on loopback. On a real LAN pass its broadcast
// address (192.168.1.255, say) or 255.255.255.255.
//
// Usage:
//
//	crust-lan listen|broadcast|node [-addr 127.255.255.255] [-port 5483]
//	          [-listen 127.0.0.1:0] [-duration 0] [-loglevel warn]
//
// Flags may come before or after the mode. -duration 0 runs until Ctrl-C (SIGINT or
// SIGTERM), which closes everything and exits 0. Logs (log/slog, text) go to standard
// error; what the demo sees to standard output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/crust-p2p/crust/beacon"

	"github.com/crust-p2p/crust/cmd/internal/console"
)

// The modes, as named on the command line.
const (
	modeListen    = "listen"
	modeBroadcast = "broadcast"
	modeNode      = "node"
	modeListenFor = "listen-for"
)

// options are crust-lan's settings; main fills them from the command line.
type options struct {
	// mode is modeListen, modeBroadcast or modeNode.
	mode string
	// addr is the one address beacons are sent to.
	addr netip.Addr
	// port is the beacon's UDP port, shared by every node on the host.
	port uint16
	// listen is the node's TCP and QUIC listen address (node mode only).
	listen string
	// duration is how long to run; 0 runs until ctx ends (Ctrl-C).
	duration time.Duration
	// logLevel is off, error, warn, info or debug.
	logLevel string
	// logOut receives the logs. Default: os.Stderr.
	logOut io.Writer
	// peer is the address listen-for opens the firewall for.
	peer netip.AddrPort
	// hops is listen-for's hop limit: 0 sends nothing, -1 picks it (auto).
	hops int
}

func defaultOptions() options {
	return options{
		addr:     netip.MustParseAddr("127.255.255.255"),
		port:     beacon.DefaultPort,
		listen:   "127.0.0.1:0",
		logLevel: "warn",
	}
}

const usage = `Usage: crust-lan listen|broadcast|node [flags]

Shows crust's LAN discovery (the beacon on UDP). Modes:
  listen     print every beacon heard: type, sender, address, ports, contacts
  broadcast  send a Query and an Announce, print every Reply and Announce heard
  node       run a crust node with the beacon on; print peers found, connected, lost
  listen-for PEER_ADDR
             listen on -listen and open this host's stateful firewall for PEER_ADDR
             (ip:port) with one hop-limited SYN from the listen port (-hops N, or auto:
             past the first router, short of the peer), then print the connections
             that come in; the peer connects from PEER_ADDR's port (SocketSynergy)

Beacons are sent only to -addr; the default keeps them on loopback.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so a second one stops at once.
	go func() { <-ctx.Done(); stop() }()

	opts, err := parseArgs(os.Args[1:], os.Stderr)
	if err != nil {
		stop()
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "crust-lan:", err)
		os.Exit(2)
	}
	err = run(ctx, opts, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crust-lan:", err)
		os.Exit(1)
	}
}

// parseArgs reads the mode and the flags, in any order, from args. Usage goes to
// usageOut on -h and on errors.
func parseArgs(args []string, usageOut io.Writer) (options, error) {
	opts := defaultOptions()
	fs := flag.NewFlagSet("crust-lan", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		fmt.Fprint(usageOut, usage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", opts.addr.String(), "the IPv4 broadcast address beacons are sent to (the only place they go)")
	port := fs.Uint("port", uint(opts.port), "the beacon's UDP port")
	fs.StringVar(&opts.listen, "listen", opts.listen, "node mode: the TCP and QUIC listen address")
	fs.DurationVar(&opts.duration, "duration", opts.duration, "how long to run; 0 runs until Ctrl-C")
	fs.StringVar(&opts.logLevel, "loglevel", opts.logLevel, "log level: off, error, warn, info or debug")
	hops := fs.String("hops", "auto", "listen-for: hop limit of the firewall-opening SYN; auto, or 0 to send none")

	// flag stops at the first argument that is not a flag: parse again after each one,
	// so that flags may follow the mode.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return options{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) == 0 || len(positional) > 2 || (len(positional) == 2) != (positional[0] == modeListenFor) {
		fs.Usage()
		return options{}, fmt.Errorf("want one mode (listen, broadcast, node, or listen-for PEER_ADDR), got %q", positional)
	}
	opts.mode = positional[0]
	if opts.mode == modeListenFor {
		peer, err := netip.ParseAddrPort(positional[1])
		if err != nil {
			return options{}, fmt.Errorf("listen-for %q: want the peer's ip:port: %w", positional[1], err)
		}
		opts.peer = peer
		if *hops == "auto" {
			opts.hops = -1
		} else if opts.hops, err = strconv.Atoi(*hops); err != nil || opts.hops < 0 || opts.hops > 255 {
			return options{}, fmt.Errorf("-hops %q: want auto or 0 to 255", *hops)
		}
	}

	a, err := netip.ParseAddr(*addr)
	if err != nil {
		return options{}, fmt.Errorf("-addr %q: want an IPv4 address such as 127.255.255.255: %w", *addr, err)
	}
	opts.addr = a
	if *port == 0 || *port > 65535 {
		return options{}, fmt.Errorf("-port %d: want 1 to 65535", *port)
	}
	opts.port = uint16(*port)
	return opts, opts.validate()
}

func (o options) validate() error {
	switch {
	case o.mode != modeListen && o.mode != modeBroadcast && o.mode != modeNode && o.mode != modeListenFor:
		return fmt.Errorf("mode %q: want listen, broadcast, node or listen-for", o.mode)
	case !o.addr.Is4():
		return fmt.Errorf("-addr %s: want an IPv4 broadcast address (IPv6 multicast is not supported yet), e.g. 127.255.255.255", o.addr)
	case o.port == 0:
		return fmt.Errorf("-port 0: want 1 to 65535")
	case o.duration < 0:
		return fmt.Errorf("-duration %v: want 0 (until Ctrl-C) or more", o.duration)
	}
	return nil
}

// run runs opts.mode, printing what it sees to out, until ctx ends or opts.duration
// passes. It returns nil on such an orderly end, and only after every socket it opened
// is closed and every goroutine it started has ended.
func run(ctx context.Context, opts options, out io.Writer) error {
	if err := opts.validate(); err != nil {
		return err
	}
	logOut := opts.logOut
	if logOut == nil {
		logOut = os.Stderr
	}
	log, err := console.NewLogger(opts.logLevel, logOut)
	if err != nil {
		return err
	}
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	p := console.NewPrinter(out)
	switch opts.mode {
	case modeListen:
		return runListen(ctx, opts, p, log)
	case modeBroadcast:
		return runBroadcast(ctx, opts, p, log)
	case modeListenFor:
		return runListenFor(ctx, opts, p, log)
	default:
		return runNode(ctx, opts, p, log)
	}
}
