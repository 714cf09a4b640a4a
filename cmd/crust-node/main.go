// Command crust-node is the crust daemon: one node that keeps direct, encrypted
// connections to its peers, remembers them in a bootstrap cache, and is driven by a
// routing layer (or a person) through a local admin API.
//
// Run the daemon:
//
//	crust-node [--config PATH|-] [--loglevel off|error|warn|info|debug] [--log-json]
//	crust-node --print-default
//
// With no --config it runs on the defaults (--print-default shows them, as TOML with
// a comment per key); --config - reads the config from standard input. SIGINT or
// SIGTERM stops it cleanly: Goodbye to every peer, the bootstrap cache saved, exit 0.
// With --metrics HOST:PORT (or metrics_addr in the config; off by default) it also
// serves Prometheus metrics at http://HOST:PORT/metrics (package metrics lists them).
//
// Talk to a running daemon (through its admin socket, found from the same config, or
// named with --admin):
//
//	crust-node self                    this node: ID, contact, endpoints
//	crust-node peers [--json]          connected peers
//	crust-node connect CONTACT         connect to a contact ("id@tcp://host:port,...")
//	crust-node disconnect ID           disconnect a peer
//	crust-node send ID TEXT            send a message
//	crust-node bootstrap [--json]      the bootstrap cache's entries
//	crust-node stats [--json]          attempts per ladder step, successes per kind
//	crust-node block ID|PREFIX         disconnect and refuse a node, or an IP prefix
//	                                   (192.0.2.0/24) or address; kept across restarts
//	crust-node unblock ID|PREFIX       undo a block
//	crust-node blocked [--json]        the blocked nodes and prefixes, the whitelist
//	crust-node events [--json]         follow connections, losses and messages
//
// Each takes --admin ADDR (unix:///path or tcp://127.0.0.1:PORT), --config PATH or
// --data-dir DIR to find the daemon, and --timeout.
//
// Blocks made with "block" are kept in blocked.json in the data directory and added
// to the config file's blacklist and blacklist_prefixes at each start; "unblock" of
// a config file entry lasts until the next start. A blocked.json that cannot be read
// as a whole is set aside as blocked.json.corrupt-<time>, with an error logged, and
// the daemon runs on.
package main

import (
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return runCommand(cmd, args[0], args[1:], stdout, stderr)
		}
	}
	return runDaemon(args, stdin, stdout, stderr)
}
