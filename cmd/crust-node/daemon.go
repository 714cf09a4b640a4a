package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
	"github.com/crust-p2p/crust/cmd/internal/config"
	"github.com/crust-p2p/crust/cmd/internal/console"
)

const daemonUsage = `Usage:
  crust-node [--config PATH|-] [--loglevel LEVEL] [--log-json]   run the daemon
  crust-node --print-default                                     print the default config
  crust-node COMMAND [flags] [args]                              talk to a running daemon:
      self, peers, connect, disconnect, send, bootstrap, stats,
      block, unblock, blocked, events
Run "crust-node COMMAND --help" for a command's flags.

Daemon flags:
`

// runDaemon parses the daemon's flags and runs it until SIGINT or SIGTERM.
func runDaemon(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crust-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (TOML); - reads standard input; empty runs on the defaults")
	printDefault := fs.Bool("print-default", false, "print the default config, every key with a comment, and exit")
	logLevel := fs.String("loglevel", "info", "log level: off, error, warn, info or debug")
	logJSON := fs.Bool("log-json", false, "log JSON objects, one per line, instead of text")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics, like 127.0.0.1:9464 (overrides metrics_addr; \"\" turns it off)")
	fs.Usage = func() {
		fmt.Fprint(stderr, daemonUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "crust-node: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *printDefault {
		if err := config.WriteDefault(stdout); err != nil {
			fmt.Fprintf(stderr, "crust-node: %v\n", err)
			return 1
		}
		return 0
	}
	newLogger := console.NewLogger
	if *logJSON {
		newLogger = console.NewJSONLogger
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "crust-node: %v\n", err)
		return 2
	}
	cfg, err := loadConfig(*configPath, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "crust-node: %v\n", err)
		return 2
	}
	if flagSet(fs, "metrics") {
		if err := config.CheckMetricsAddr(*metricsAddr); err != nil {
			fmt.Fprintf(stderr, "crust-node: -metrics: %v\n", err)
			return 2
		}
		cfg.MetricsAddr = *metricsAddr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon(ctx, cfg, log, stdout); err != nil {
		log.Error("crust-node stopped", "err", err)
		fmt.Fprintf(stderr, "crust-node: %v\n", err)
		return 1
	}
	return 0
}

// flagSet reports whether the flag name was given on the command line, even empty.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// loadConfig reads the config at path ("-": standard input; "": the defaults).
func loadConfig(path string, stdin io.Reader) (config.Config, error) {
	switch path {
	case "":
		return config.Default(), nil
	case "-":
		return config.Load(stdin, "<stdin>")
	}
	f, err := os.Open(path)
	if err != nil {
		return config.Config{}, err
	}
	defer f.Close()
	return config.Load(f, path)
}

// resolveDataDir returns cfg's data directory, made absolute.
func resolveDataDir(cfg config.Config) (string, error) {
	dir, err := cfg.DataDir()
	if err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// adminURL is the admin endpoint of cfg as admin.Listen and admin.Dial take it, or ""
// when the admin API is off.
func adminURL(cfg config.Config, dataDir string) (string, error) {
	network, addr, err := cfg.AdminAddr(dataDir)
	if err != nil || network == "" {
		return "", err
	}
	return network + "://" + addr, nil
}

// daemon runs a node on cfg until ctx ends, then stops it cleanly. It prints one line
// to stdout once the node and its admin API are up: "ready", the NodeID, where the
// admin API listens and, with metrics on, where the metrics endpoint listens
// ("ready ID admin=ADDR metrics=HOST:PORT").
func daemon(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	dataDir, err := resolveDataDir(cfg)
	if err != nil {
		return err
	}
	scfg, err := cfg.Service()
	if err != nil {
		return err
	}
	scfg.DataDir, scfg.Log = dataDir, log
	adminAddr, err := adminURL(cfg, dataDir)
	if err != nil {
		return err
	}
	blocks, err := loadBlockFile(dataDir, &scfg, log, time.Now())
	if err != nil {
		return err
	}
	met, err := listenMetrics(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	svc, err := crust.New(scfg)
	if err != nil {
		met.close()
		return err
	}
	var srv *admin.Server
	serveDone := make(chan error, 1)
	if adminAddr != "" {
		ln, err := admin.Listen(adminAddr)
		if err != nil {
			met.close()
			svc.Close()
			return fmt.Errorf("admin API: %w", err)
		}
		srv = admin.NewServer(svc, log, admin.WithBlockStore(blocks))
		go func() { serveDone <- srv.Serve(ln) }()
	}
	met.serve(svc)
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range svc.Events() {
			logEvent(log, ev)
			met.observe(ev)
			if srv != nil {
				srv.Publish(ev)
			}
		}
	}()
	log.Info("crust-node running", "id", svc.ID(), "endpoints", endpointList(svc.Endpoints()), "data_dir", dataDir, "admin", adminAddr, "metrics", met.addr())
	ready := fmt.Sprintf("ready %s admin=%s", svc.ID(), adminAddr)
	if met != nil {
		ready += " metrics=" + met.addr()
	}
	fmt.Fprintln(stdout, ready)

	var serveErr, metricsErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: signal received")
	case serveErr = <-serveDone:
		log.Error("admin API stopped; stopping", "err", serveErr)
	case <-met.done():
		metricsErr = met.err
		log.Error("metrics endpoint stopped; stopping", "err", metricsErr)
	}
	if srv != nil {
		srv.Close()
	}
	met.close()
	closeErr := svc.Close() // Goodbye to every peer, the bootstrap cache saved
	<-eventsDone
	log.Info("crust-node stopped")
	if serveErr != nil {
		return fmt.Errorf("admin API: %w", serveErr)
	}
	if metricsErr != nil {
		return fmt.Errorf("metrics endpoint: %w", metricsErr)
	}
	return closeErr
}

// logEvent logs what happened: connections and losses at info, messages and
// listeners (the library logs those) at debug.
func logEvent(log *slog.Logger, ev crust.Event) {
	switch ev := ev.(type) {
	case crust.PeerConnected:
		log.Info("peer connected", "peer", ev.ID, "kind", ev.Kind, "addr", ev.Addr, "rtt", ev.RTT, "outbound", ev.Outbound)
	case crust.PeerLost:
		log.Info("peer lost", "peer", ev.ID, "reason", ev.Reason)
	case crust.Message:
		log.Debug("message", "from", ev.From, "bytes", len(ev.Data))
	case crust.ListenerStarted:
		log.Debug("listener started", "endpoint", ev.Endpoint)
	case crust.ListenerFailed:
		log.Warn("listen address failed", "addr", ev.Addr, "err", ev.Err)
	}
}

func endpointList(eps []crust.Endpoint) string {
	s := make([]string, len(eps))
	for i, ep := range eps {
		s[i] = ep.String()
	}
	return strings.Join(s, ",")
}
