package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/crust-p2p/crust/admin"
)

// command is a subcommand that talks to a running daemon.
type command struct {
	// args names the positional arguments, for the usage line.
	args string
	// nargs is how many positional arguments it takes.
	nargs int
	// help is one line saying what it does.
	help string
	// run does it; out receives what it prints.
	run func(ctx context.Context, c *admin.Client, args []string, asJSON bool, out io.Writer) error
}

// commands are the subcommands, by name.
var commands = map[string]*command{
	"self":       {help: "print this node: ID, contact, endpoints", run: cmdSelf},
	"peers":      {help: "list the connected peers", run: cmdPeers},
	"connect":    {args: "CONTACT", nargs: 1, help: `connect to a contact ("id@tcp://host:port,...")`, run: cmdConnect},
	"disconnect": {args: "ID", nargs: 1, help: "disconnect a peer", run: cmdDisconnect},
	"send":       {args: "ID TEXT", nargs: 2, help: "send TEXT to a connected peer", run: cmdSend},
	"bootstrap":  {help: "list the bootstrap cache's entries, best first", run: cmdBootstrap},
	"stats":      {help: "how connecting went: attempts per ladder step, successes per kind", run: cmdStats},
	"block":      {args: "ID|PREFIX", nargs: 1, help: "disconnect and refuse a node, or an IP prefix (192.0.2.0/24) or address; kept across restarts", run: cmdBlock},
	"unblock":    {args: "ID|PREFIX", nargs: 1, help: "undo a block (a config file entry: until the next start)", run: cmdUnblock},
	"blocked":    {help: "list the blocked nodes and IP prefixes, and the whitelist", run: cmdBlocked},
	"events":     {help: "follow connections, losses and messages until Ctrl-C", run: cmdEvents},
}

// runCommand parses a subcommand's flags, finds the daemon and runs it.
func runCommand(cmd *command, name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crust-node "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminAddr := fs.String("admin", "", "the daemon's admin address: unix:///path or tcp://127.0.0.1:PORT (default: from the config)")
	configPath := fs.String("config", "", "the daemon's config file, to find its admin address (- reads standard input)")
	dataDir := fs.String("data-dir", "", "the daemon's data directory, to find its admin socket")
	asJSON := fs.Bool("json", false, "print JSON, for programs")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the daemon (connect: for the peer)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: crust-node %s [flags] %s\n  %s\n\nFlags:\n", name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != cmd.nargs {
		fmt.Fprintf(stderr, "crust-node %s: want %d argument(s) (%s), got %d\n", name, cmd.nargs, cmd.args, fs.NArg())
		fs.Usage()
		return 2
	}
	addr, err := findAdmin(*adminAddr, *configPath, *dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "crust-node %s: %v\n", name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if name != "events" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := admin.Dial(ctx, addr)
	if err != nil {
		fmt.Fprintf(stderr, "crust-node %s: %v\n", name, err)
		return 1
	}
	defer c.Close()
	if err := cmd.run(ctx, c, fs.Args(), *asJSON, stdout); err != nil {
		fmt.Fprintf(stderr, "crust-node %s: %v\n", name, err)
		return 1
	}
	return 0
}

// findAdmin returns the admin address to dial: the flag's, else the one the config
// (or the default config with dataDir) names.
func findAdmin(flagAddr, configPath, dataDir string) (string, error) {
	if flagAddr != "" {
		return flagAddr, nil
	}
	cfg, err := loadConfig(configPath, os.Stdin)
	if err != nil {
		return "", err
	}
	if dataDir != "" {
		cfg.DataDirectory = dataDir
	}
	dir, err := resolveDataDir(cfg)
	if err != nil {
		return "", err
	}
	addr, err := adminURL(cfg, dir)
	if err != nil {
		return "", err
	}
	if addr == "" {
		return "", errors.New("the config turns the admin API off (admin = \"off\"); pass --admin")
	}
	return addr, nil
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdSelf(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	s, err := c.Self(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, s)
	}
	fmt.Fprintf(out, "id:        %s\ncontact:   %s\nendpoints: %s\nreflected: %s\n",
		s.ID, s.Contact, strings.Join(s.Endpoints, " "), strings.Join(s.Reflected, " "))
	fmt.Fprintf(out, "nat:       %s", s.NAT.Behavior)
	if len(s.NAT.STUN) > 0 {
		fmt.Fprintf(out, ", stun %s", strings.Join(s.NAT.STUN, " "))
	}
	if len(s.NAT.UPnP) > 0 {
		fmt.Fprintf(out, ", upnp %s (gateway %s)", strings.Join(s.NAT.UPnP, " "), s.NAT.ExternalIP)
	}
	fmt.Fprintln(out)
	for _, e := range s.NAT.Errors {
		fmt.Fprintf(out, "           stun error: %s\n", e)
	}
	return nil
}

func cmdPeers(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	peers, err := c.Peers(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if peers == nil {
			peers = []admin.Peer{}
		}
		return printJSON(out, peers)
	}
	return writePeers(out, peers, time.Now())
}

// writePeers prints peers as a table.
func writePeers(out io.Writer, peers []admin.Peer, now time.Time) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tADDR\tDIR\tRTT\tUP\tMSGS IN/OUT\tBYTES IN/OUT")
	for _, p := range peers {
		dir := "in"
		if p.Outbound {
			dir = "out"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1fms\t%s\t%d/%d\t%d/%d\n", p.ID, p.Kind, p.Addr, dir, p.RTTms,
			now.Sub(p.Since).Round(time.Second), p.MsgsIn, p.MsgsOut, p.BytesIn, p.BytesOut)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d peer(s)\n", len(peers))
	return err
}

func cmdConnect(ctx context.Context, c *admin.Client, args []string, asJSON bool, out io.Writer) error {
	r, err := c.Connect(ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, r)
	}
	fmt.Fprintf(out, "connected %s (%s)\n", r.ID, r.Kind)
	return nil
}

func cmdDisconnect(ctx context.Context, c *admin.Client, args []string, _ bool, out io.Writer) error {
	if err := c.Disconnect(ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "disconnected %s\n", args[0])
	return nil
}

func cmdSend(ctx context.Context, c *admin.Client, args []string, _ bool, out io.Writer) error {
	if err := c.Send(ctx, args[0], []byte(args[1])); err != nil {
		return err
	}
	fmt.Fprintf(out, "sent %d bytes to %s\n", len(args[1]), args[0])
	return nil
}

func cmdBootstrap(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	entries, err := c.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if entries == nil {
			entries = []admin.BootstrapEntry{}
		}
		return printJSON(out, entries)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLAST SUCCESS\tFAILURES\tENDPOINTS")
	for _, e := range entries {
		last := "never"
		if e.LastSuccess != nil {
			last = e.LastSuccess.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", e.ID, last, e.Failures, strings.Join(e.Endpoints, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%d entr(y/ies)\n", len(entries))
	return err
}

func cmdEvents(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	events, err := c.Events(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the daemon ended the event stream")
			}
			if asJSON {
				if err := enc.Encode(ev); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintln(out, describeEvent(ev))
		}
	}
}

// describeEvent is one line about ev for a person.
func describeEvent(ev admin.Event) string {
	switch ev.Type {
	case admin.EventConnected:
		return fmt.Sprintf("connected %s %s %s rtt=%.1fms outbound=%v", ev.ID, ev.Kind, ev.Addr, ev.RTTms, ev.Outbound)
	case admin.EventLost:
		return fmt.Sprintf("lost      %s: %s", ev.ID, ev.Reason)
	case admin.EventMessage:
		if ev.Text != "" || len(ev.Data) == 0 {
			return fmt.Sprintf("message   %s: %q", ev.From, ev.Text)
		}
		return fmt.Sprintf("message   %s: %d bytes", ev.From, len(ev.Data))
	case admin.EventListenerStarted:
		return "listening " + ev.Endpoint
	case admin.EventListenerFailed:
		return fmt.Sprintf("listen failed %s: %s", ev.Addr, ev.Error)
	}
	return ev.Type
}

func cmdBlock(ctx context.Context, c *admin.Client, args []string, asJSON bool, out io.Writer) error {
	r, err := c.Block(ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, r)
	}
	if !r.Changed {
		fmt.Fprintf(out, "%s was blocked already\n", r.Target)
		return nil
	}
	fmt.Fprintf(out, "blocked %s\n", r.Target)
	return nil
}

func cmdUnblock(ctx context.Context, c *admin.Client, args []string, asJSON bool, out io.Writer) error {
	r, err := c.Unblock(ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, r)
	}
	fmt.Fprintf(out, "unblocked %s\n", r.Target)
	if r.Note != "" {
		fmt.Fprintf(out, "note: %s\n", r.Note)
	}
	return nil
}

func cmdBlocked(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	b, err := c.Blocked(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, b)
	}
	return writeBlocked(out, b)
}

// writeBlocked prints the blacklists as a table, then the whitelist if there is one.
func writeBlocked(out io.Writer, b admin.Blocked) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tBLOCKED")
	for _, id := range b.IDs {
		fmt.Fprintf(tw, "node\t%s\n", id)
	}
	for _, p := range b.Prefixes {
		fmt.Fprintf(tw, "prefix\t%s\n", p)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d node(s), %d prefix(es) blocked\n", len(b.IDs), len(b.Prefixes))
	if len(b.Whitelist) > 0 {
		fmt.Fprintf(out, "whitelist (no other node is accepted): %s\n", strings.Join(b.Whitelist, " "))
	}
	return nil
}

func cmdStats(ctx context.Context, c *admin.Client, _ []string, asJSON bool, out io.Writer) error {
	st, err := c.Stats(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(out, st)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP/KIND\tATTEMPTS\tSUCCESSES")
	for _, k := range []string{"tcp-direct", "tcp-upnp", "tcp-punch", "firewall-punch", "quic-direct", "quic-punch"} {
		if v, ok := st.Ladder[k]; ok {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", k, v.Attempts, v.Successes)
		}
	}
	return tw.Flush()
}
