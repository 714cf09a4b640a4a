// Command crust-msgrate measures crust's message rates: it starts a node, or joins
// one, sends messages to its peers at a given rate (or as fast as it can), and reports
// the messages and megabytes per second going out and coming in, then the loss and the
// latency.
//
// The first instance prints its contact ("contact: <id>@tcp://127.0.0.1:port,...");
// a second instance joins it with -connect and that text. Each sends -rate messages per
// second (or, with -max, as many as the send queue takes) to every connected peer (or,
// with -to first, to the first peer that connected) for -duration, once -peers peers
// are connected. The sending time starts when they are. Once a second it prints a live
// line of outgoing and incoming messages/s and MB/s (1 MB = 10^6 bytes of payload): on
// a terminal, one line rewritten in place; elsewhere, one line per second.
//
// Every message carries, in its first 16 bytes, a sequence number counted per
// destination peer and its send time (8 bytes big-endian each; see payload.go), then
// zero padding up to -size bytes. When sending ends, the instance waits until nothing
// more arrives (at most 2 s), then prints a summary: messages and bytes sent and
// received, the loss (per sending peer, the highest sequence number seen plus one
// minus the messages received from it, so messages still in flight are not lost), and
// the latency percentiles p50, p90, p99 and max. The latency is the receiver's clock
// minus the sender's at send: valid only when both run on one host (or clocks agree
// to well under the latency). It includes the time a message waits in the send queue,
// which with -max is most of it.
//
// Usage:
//
//	crust-msgrate [-connect CONTACT]... [-rate 1000 | -max] [-size 64] [-duration 10s]
//	              [-to all|first] [-peers 1] [-protocols tcp,quic] [-listen 127.0.0.1:0]
//	              [-expect-no-loss] [-loglevel warn]
//
// Ctrl-C (SIGINT or SIGTERM) ends the sending early and still prints the summary; a
// second Ctrl-C stops at once. The exit status is 0 on success, 1 if -expect-no-loss
// is given and messages were lost, 2 on bad flags or when the node cannot start or
// connect. Logs (log/slog, text) go to standard error; the rest to standard output.
// Everything stays on loopback unless -listen and -connect say otherwise: no LAN
// beacon, no STUN, no UPnP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// errLoss is run's error when -expect-no-loss is given and messages were lost.
var errLoss = errors.New("messages were lost (-expect-no-loss)")

func main() {
	opts, err := parseArgs(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage was asked for
		}
		os.Exit(2) // the flag package has printed the error and the usage
	}
	opts.terminal = isTerminal(os.Stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so a second one stops at once.
	go func() { <-ctx.Done(); stop() }()
	_, err = run(ctx, opts, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crust-msgrate:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the exit status: 0 for none, 1 for lost messages under
// -expect-no-loss, 2 for anything else (bad options, a node that cannot start or
// connect).
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errLoss):
		return 1
	default:
		return 2
	}
}

// isTerminal reports whether f is a terminal (a character device), where the live
// line is rewritten in place.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseArgs fills options from the command line, printing errors and usage to
// stderr. It checks the flags' syntax and values (options.validate).
func parseArgs(args []string, stderr io.Writer) (options, error) {
	opts := defaultOptions()
	fs := flag.NewFlagSet("crust-msgrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Func("connect", "contact of a node to join, as it printed it (`CONTACT`); repeat for several", func(s string) error {
		opts.connect = append(opts.connect, s)
		return nil
	})
	fs.IntVar(&opts.rate, "rate", opts.rate, "messages per second to each peer")
	fs.BoolVar(&opts.max, "max", opts.max, "send as fast as possible, ignoring -rate")
	fs.IntVar(&opts.size, "size", opts.size, fmt.Sprintf("bytes per message, %d to %d", headerSize, maxSize))
	fs.DurationVar(&opts.duration, "duration", opts.duration, "how long to send, from when -peers peers are connected; 0 sends until Ctrl-C")
	fs.StringVar(&opts.to, "to", opts.to, "send to all connected peers, or to the first that connected: all or first")
	fs.IntVar(&opts.peers, "peers", opts.peers, "how many peers must be connected before sending starts")
	fs.Func("protocols", "transports to use, comma-separated: tcp, quic (default tcp,quic)", func(s string) error {
		opts.protocols = splitList(s)
		return nil
	})
	fs.Func("listen", "addresses to listen on, comma-separated ip:port (default 127.0.0.1:0)", func(s string) error {
		opts.listen = splitList(s)
		return nil
	})
	fs.BoolVar(&opts.expectNoLoss, "expect-no-loss", opts.expectNoLoss, "exit with status 1 if any message was lost")
	fs.StringVar(&opts.logLevel, "loglevel", opts.logLevel, "log level: off, error, warn, info or debug")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: crust-msgrate [flags]\n\n"+
			"Starts a crust node on loopback (or joins one with -connect), sends messages to its\n"+
			"peers at -rate per second (or -max), prints messages/s and MB/s each second, then\n"+
			"the loss and latency percentiles.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintln(stderr, "crust-msgrate:", err)
		fs.Usage()
		return options{}, err
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintln(stderr, "crust-msgrate:", err)
		return options{}, err
	}
	return opts, nil
}

// splitList splits a comma-separated flag value, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
