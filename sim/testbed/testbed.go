package testbed

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// script is testbed.sh; Up runs it with bash -c, so tests in any package (whatever
// their working directory) use the same script, and no copy is left on disk.
//
//go:embed testbed.sh
var script string

// EnvVar must be "1" for Up to build a testbed; otherwise the test is skipped, so a
// plain `go test ./...` (as non-root, or without the packages) passes.
const EnvVar = "CRUST_TESTBED"

// Inbound is what a router does with unsolicited packets arriving on its WAN side.
type Inbound string

const (
	// InboundDrop drops them silently, as most home routers do: a connection
	// attempt times out.
	InboundDrop Inbound = "drop"
	// InboundReject answers TCP with RST and anything else with ICMP port
	// unreachable: a connection attempt fails at once.
	InboundReject Inbound = "reject"
	// InboundOpen filters nothing: NAT routers only masquerade (the router's own
	// stack answers packets that match no mapping), the firewall only routes.
	InboundOpen Inbound = "open"
)

// Options shape a testbed. The zero value is the default topology.
type Options struct {
	// Inbound is the unsolicited-inbound policy by router name ("nat1", "nat2",
	// "fw"). Default: InboundDrop for every router.
	Inbound map[string]Inbound
	// Netem delays each direction of every router's WAN link (tc netem), so a
	// packet between two sites gains twice this. Default 0: no delay. The test is
	// skipped when the kernel has no netem.
	Netem time.Duration
	// UDPTimeout sets the routers' conntrack timeouts for UDP (unreplied and
	// established), to test mapping expiry; rounded up to whole seconds. Default 0:
	// the kernel's, 30 s and 120 s.
	UDPTimeout time.Duration
	// RunTimeout bounds each Run. Default 15 s.
	RunTimeout time.Duration
}

// Router is one of the testbed's routers.
type Router struct {
	// Name is "nat1", "nat2" or "fw".
	Name string
	// NS is the router's network namespace.
	NS string
	// WAN is the router's address on the internet side (the address hosts behind
	// a NAT router appear from).
	WAN netip.Addr
	// LAN is the router's LAN address with the LAN's prefix length (192.168.1.1/24).
	LAN netip.Prefix
	// NAT is "cone" (endpoint-independent, port-preserving), "symmetric"
	// (MASQUERADE --random-fully) or "none" (the firewall).
	NAT string
	// Inbound is the router's policy for unsolicited inbound packets.
	Inbound Inbound
}

// Host is a machine in the testbed: a host behind a router, or the public host.
type Host struct {
	// Name is "h1a", "h1b", "h2a", "h3a" or "pub".
	Name string
	// NS is the host's network namespace.
	NS string
	// Addr is the host's own address (private behind a NAT router).
	Addr netip.Addr
	// Router is the name of the router in front of the host; empty for pub.
	Router string
}

// STUNServer is the STUN host on the internet side: coturn (RFC 5389/5780, UDP and
// TCP) on both addresses at Port and AltPort, and stund (RFC 3489, UDP) on both
// addresses at StundPort and StundAltPort.
type STUNServer struct {
	// NS is the STUN host's network namespace.
	NS string
	// Addrs are the host's two addresses (RFC 5780 needs two).
	Addrs [2]netip.Addr
	// Port and AltPort are coturn's ports (3478, 3479).
	Port, AltPort uint16
	// StundPort and StundAltPort are stund's ports (3480, 3481).
	StundPort, StundAltPort uint16
}

// Net is a running testbed. Its fields are the addresses testbed.sh reported.
type Net struct {
	// Prefix starts every namespace name of this testbed.
	Prefix string
	// Dir is the run directory: env file, PID files, daemon configs and logs.
	Dir string
	// Inet is the namespace of the router that plays the internet.
	Inet string
	// STUN is the STUN host.
	STUN STUNServer
	// Pub is the public host (no NAT, no firewall).
	Pub Host
	// NAT1 (cone, with miniupnpd), NAT2 (symmetric) and FW (firewall, no NAT).
	NAT1, NAT2, FW Router
	// H1A and H1B sit behind NAT1, H2A behind NAT2, H3A behind FW.
	H1A, H1B, H2A, H3A Host
	// UPnPRootURL is miniupnpd's root description, reachable from NAT1's LAN.
	UPnPRootURL string
	// NATPMPGateway is where NAT1's LAN sends NAT-PMP and PCP requests (port 5351).
	NATPMPGateway netip.Addr
	// Env is the run directory's env file as read: every KEY=VALUE testbed.sh wrote.
	Env map[string]string

	runTimeout time.Duration
}

var upCount atomic.Uint32

// Up builds a testbed and registers its teardown with t.Cleanup. It skips the test
// unless CRUST_TESTBED=1, the process runs as root and `ip netns` works; it fails the
// test if the testbed cannot be built.
func Up(t testing.TB, opts Options) *Net {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("real-NAT testbed: set %s=1 and run as root (make test-nat does both)", EnvVar)
	}
	if os.Geteuid() != 0 {
		t.Skip("real-NAT testbed: needs root (network namespaces, iptables)")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("real-NAT testbed: ip netns does not work here: %v: %s", err, out)
	}

	// Unique per process and call; "cbt" marks a test's testbed for `testbed.sh reap`.
	prefix := fmt.Sprintf("cbt%dx%d", os.Getpid(), upCount.Add(1))
	args := []string{"up", "--prefix", prefix, "--owner", strconv.Itoa(os.Getpid())}
	for _, name := range []string{"nat1", "nat2", "fw"} {
		if p, ok := opts.Inbound[name]; ok {
			args = append(args, "--inbound", name+"="+string(p))
		}
	}
	for name := range opts.Inbound {
		if name != "nat1" && name != "nat2" && name != "fw" {
			t.Fatalf("testbed: Options.Inbound: no router %q (nat1, nat2, fw)", name)
		}
	}
	if opts.Netem > 0 {
		args = append(args, "--netem", fmt.Sprintf("%dus", opts.Netem.Microseconds()))
	}
	if opts.UDPTimeout > 0 {
		args = append(args, "--udp-timeout", strconv.Itoa(int(math.Ceil(opts.UDPTimeout.Seconds()))))
	}

	// Registered before up: a failed or interrupted up leaves nothing behind.
	t.Cleanup(func() {
		if out, err := runScript(time.Minute, "down", "--prefix", prefix); err != nil {
			t.Errorf("testbed: down %s: %v\n%s", prefix, err, out)
		}
	})
	start := time.Now()
	out, err := runScript(time.Minute, args...)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 && opts.Netem > 0 {
			t.Skipf("real-NAT testbed: this kernel has no netem: %s", out)
		}
		t.Fatalf("testbed: up: %v\n%s", err, out)
	}
	t.Logf("testbed %s up in %v", prefix, time.Since(start).Round(time.Millisecond))

	runBase := os.Getenv("CRUST_TESTBED_RUN")
	if runBase == "" {
		runBase = "/run/crust-testbed"
	}
	n, err := load(filepath.Join(runBase, prefix, "env"))
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	n.runTimeout = opts.RunTimeout
	if n.runTimeout <= 0 {
		n.runTimeout = 15 * time.Second
	}
	return n
}

// runScript runs testbed.sh with args and returns its combined output.
func runScript(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, "testbed.sh"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// load reads the env file testbed.sh wrote.
func load(path string) (*Net, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the testbed's addresses: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	p := envParser{env: env, path: path}
	router := func(name string) Router {
		key := strings.ToUpper(name)
		return Router{
			Name:    name,
			NS:      p.str("NS_" + key),
			WAN:     p.addr(key + "_WAN"),
			LAN:     p.prefix(key + "_LAN"),
			NAT:     p.str(key + "_NAT"),
			Inbound: Inbound(p.str(key + "_INBOUND")),
		}
	}
	host := func(name string) Host {
		key := strings.ToUpper(name)
		return Host{Name: name, NS: p.str("NS_" + key), Addr: p.addr(key + "_ADDR"), Router: env[key+"_ROUTER"]}
	}
	n := &Net{
		Prefix: p.str("PREFIX"),
		Dir:    p.str("RUN_DIR"),
		Inet:   p.str("NS_INET"),
		STUN: STUNServer{
			NS:           p.str("NS_STUN"),
			Addrs:        [2]netip.Addr{p.addr("STUN_ADDR1"), p.addr("STUN_ADDR2")},
			Port:         p.port("STUN_PORT"),
			AltPort:      p.port("STUN_ALT_PORT"),
			StundPort:    p.port("STUND_PORT"),
			StundAltPort: p.port("STUND_ALT_PORT"),
		},
		Pub:           Host{Name: "pub", NS: p.str("NS_PUB"), Addr: p.addr("PUB_ADDR")},
		NAT1:          router("nat1"),
		NAT2:          router("nat2"),
		FW:            router("fw"),
		H1A:           host("h1a"),
		H1B:           host("h1b"),
		H2A:           host("h2a"),
		H3A:           host("h3a"),
		UPnPRootURL:   p.str("UPNP_ROOT_URL"),
		NATPMPGateway: p.addr("NATPMP_GATEWAY"),
		Env:           env,
	}
	if p.err != nil {
		return nil, p.err
	}
	return n, nil
}

// envParser reads typed values from the env file, keeping the first error.
type envParser struct {
	env  map[string]string
	path string
	err  error
}

func (p *envParser) str(key string) string {
	v, ok := p.env[key]
	if !ok && p.err == nil {
		p.err = fmt.Errorf("%s: no %s", p.path, key)
	}
	return v
}

func (p *envParser) addr(key string) netip.Addr {
	a, err := netip.ParseAddr(p.str(key))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %s: %w", p.path, key, err)
	}
	return a
}

func (p *envParser) prefix(key string) netip.Prefix {
	a, err := netip.ParsePrefix(p.str(key))
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %s: %w", p.path, key, err)
	}
	return a
}

func (p *envParser) port(key string) uint16 {
	v, err := strconv.ParseUint(p.str(key), 10, 16)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %s: %w", p.path, key, err)
	}
	return uint16(v)
}

// Run runs a command inside namespace ns (ip netns exec) with standard input empty
// and returns its combined output. It fails when the command does, or when it runs
// longer than Options.RunTimeout; the error carries the output.
func (n *Net) Run(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", n.runTimeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w\n%s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// RestartUPnP stops NAT1's miniupnpd by its PID and starts a fresh one, as when a
// router's UPnP daemon restarts: every port mapping (rules and lease file) is gone.
// It returns once the new daemon listens.
func (n *Net) RestartUPnP() error {
	if out, err := runScript(time.Minute, "restart-upnp", "--prefix", n.Prefix); err != nil {
		return fmt.Errorf("restarting miniupnpd: %w\n%s", err, out)
	}
	return nil
}

// FlushConntrack deletes every conntrack entry in namespace ns (a router's NS): each
// NAT mapping and each "established" flow the firewall remembers is forgotten.
func (n *Net) FlushConntrack(ns string) error {
	_, err := n.Run(ns, "conntrack", "-F")
	return err
}

// Daemons returns the PID of each daemon testbed.sh started, by name ("coturn",
// "stund", "miniupnpd").
func (n *Net) Daemons() (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(n.Dir, "pids", "*.pid"))
	if err != nil {
		return nil, err
	}
	pids := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return pids, nil
}

// Namespaces lists every namespace of the testbed.
func (n *Net) Namespaces() []string {
	return []string{n.Inet, n.STUN.NS, n.Pub.NS, n.NAT1.NS, n.NAT2.NS, n.FW.NS,
		n.H1A.NS, n.H1B.NS, n.H2A.NS, n.H3A.NS}
}
