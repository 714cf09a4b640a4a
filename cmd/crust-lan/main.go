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
	if len(positional) != 1 {
		fs.Usage()
		return options{}, fmt.Errorf("want one mode (listen, broadcast or node), got %q", positional)
	}
	opts.mode = positional[0]

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
	case o.mode != modeListen && o.mode != modeBroadcast && o.mode != modeNode:
		return fmt.Errorf("mode %q: want listen, broadcast or node", o.mode)
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
	default:
		return runNode(ctx, opts, p, log)
	}
}
