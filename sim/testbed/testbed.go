package testbed

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
	// "nat3", "fw"). Default: InboundDrop for every router.
	Inbound map[string]Inbound
	// Netem delays each direction of every router's WAN link, so a packet between
	// a router's site and pub gains this once, one between two routers' sites twice.
	// Default 0: no delay. With a tc netem qdisc where the kernel has one; otherwise
	// Up holds every packet crossing a WAN link in an NFQUEUE queue of the internet
	// namespace and accepts it this long after it arrived (Net.NetemMethod says
	// which). The test is skipped when neither works.
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
	// Name is "nat1", "nat2", "nat3" or "fw".
	Name string
	// NS is the router's network namespace.
	NS string
	// WAN is the router's address on the internet side (the address hosts behind
	// a NAT router appear from).
	WAN netip.Addr
	// WAN6 is its IPv6 address there; only FW has one (IPv6 runs where no NAT is).
	WAN6 netip.Addr
	// LAN is the router's LAN address with the LAN's prefix length (192.168.1.1/24).
	LAN netip.Prefix
	// NAT is "cone" (endpoint-independent, port-preserving: nat1, nat3),
	// "symmetric" (MASQUERADE --random-fully: nat2) or "none" (the firewall).
	NAT string
	// Inbound is the router's policy for unsolicited inbound packets.
	Inbound Inbound
}

// Host is a machine in the testbed: a host behind a router, or the public host.
type Host struct {
	// Name is "h1a", "h1b", "h2a", "h3a", "h4a" or "pub".
	Name string
	// NS is the host's network namespace.
	NS string
	// Addr is the host's own address (private behind a NAT router).
	Addr netip.Addr
	// Addr6 is its IPv6 address; only Pub and H3A (behind FW) have one.
	Addr6 netip.Addr
	// Router is the name of the router in front of the host; empty for pub.
	Router string
}

// STUNServer is the STUN host on the internet side: coturn (RFC 5389/5780, UDP and
// TCP) on both addresses at Port and AltPort, and stund (RFC 3489, UDP) on both
// addresses at StundPort and StundAltPort.
type STUNServer struct {
	// NS is the STUN host's network namespace.
	NS string
	// Addrs are the host's two addresses (RFC 5780 needs two); Addrs6 its two IPv6
	// ones, where coturn listens too.
	Addrs, Addrs6 [2]netip.Addr
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
	// NAT1 (cone, with miniupnpd), NAT2 (symmetric), FW (firewall, no NAT) and
	// NAT3 (cone like NAT1, no UPnP: the other end of a hole punch from H1A).
	NAT1, NAT2, FW, NAT3 Router
	// H1A and H1B sit behind NAT1, H2A behind NAT2, H3A behind FW, H4A behind NAT3.
	H1A, H1B, H2A, H3A, H4A Host
	// UPnPRootURL is miniupnpd's root description, reachable from NAT1's LAN.
	UPnPRootURL string
	// NATPMPGateway is where NAT1's LAN sends NAT-PMP and PCP requests (port 5351).
	NATPMPGateway netip.Addr
	// Netem is Options.Netem, and NetemMethod how the WAN links are delayed: "tc"
	// (netem qdiscs) or "nfqueue" (Up's own delayer); empty without a delay.
	Netem       time.Duration
	NetemMethod string
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
	routers := []string{"nat1", "nat2", "nat3", "fw"}
	for _, name := range routers {
		if p, ok := opts.Inbound[name]; ok {
			args = append(args, "--inbound", name+"="+string(p))
		}
	}
	for name := range opts.Inbound {
		if !slices.Contains(routers, name) {
			t.Fatalf("testbed: Options.Inbound: no router %q (nat1, nat2, nat3, fw)", name)
		}
	}
	if opts.Netem > 0 {
		args = append(args, "--netem", fmt.Sprintf("%dus", opts.Netem.Microseconds()), "--netem-method", "auto")
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
	env := n.Env
	n.runTimeout = opts.RunTimeout
	if n.runTimeout <= 0 {
		n.runTimeout = 15 * time.Second
	}
	if opts.Netem > 0 {
		n.Netem = opts.Netem
	}
	if n.NetemMethod == "nfqueue" {
		queue, err := strconv.ParseUint(env["NETEM_QUEUE"], 10, 16)
		if err != nil {
			t.Fatalf("testbed: NETEM_QUEUE %q: %v", env["NETEM_QUEUE"], err)
		}
		d, err := startDelayer(n.Inet, uint16(queue), opts.Netem)
		if err != nil {
			t.Fatalf("testbed: delaying the WAN links: %v", err)
		}
		// Registered after the teardown: runs before it, while the namespace exists.
		t.Cleanup(func() {
			if err := d.stop(); err != nil {
				t.Errorf("testbed: the WAN-link delayer in %s: %v", n.Inet, err)
			}
		})
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
			Addrs6:       [2]netip.Addr{p.addr("STUN_ADDR6_1"), p.addr("STUN_ADDR6_2")},
			Port:         p.port("STUN_PORT"),
			AltPort:      p.port("STUN_ALT_PORT"),
			StundPort:    p.port("STUND_PORT"),
			StundAltPort: p.port("STUND_ALT_PORT"),
		},
		Pub:           Host{Name: "pub", NS: p.str("NS_PUB"), Addr: p.addr("PUB_ADDR"), Addr6: p.addr("PUB_ADDR6")},
		NAT1:          router("nat1"),
		NAT2:          router("nat2"),
		FW:            router("fw"),
		NAT3:          router("nat3"),
		H1A:           host("h1a"),
		H1B:           host("h1b"),
		H2A:           host("h2a"),
		H3A:           host("h3a"),
		H4A:           host("h4a"),
		UPnPRootURL:   p.str("UPNP_ROOT_URL"),
		NATPMPGateway: p.addr("NATPMP_GATEWAY"),
		NetemMethod:   p.str("NETEM_METHOD"),
		Env:           env,
	}
	n.FW.WAN6, n.H3A.Addr6 = p.addr("FW_WAN6"), p.addr("H3A_ADDR6")
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
	for _, family := range []string{"ipv4", "ipv6"} {
		if _, err := n.Run(ns, "conntrack", "-F", "-f", family); err != nil {
			return err
		}
	}
	return nil
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
	return []string{n.Inet, n.STUN.NS, n.Pub.NS, n.NAT1.NS, n.NAT2.NS, n.FW.NS, n.NAT3.NS,
		n.H1A.NS, n.H1B.NS, n.H2A.NS, n.H3A.NS, n.H4A.NS}
}

// The WAN-link delayer. Where the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM
// unset, as on the project's machines), testbed.sh --netem-method nfqueue has the
// internet namespace queue every packet entering or leaving it on a router's WAN link
// to an NFQUEUE queue; the delayer binds that queue and accepts each packet Netem
// after it arrived. The internet namespace has no NAT and no conntrack rule, so the
// hold only delays, as a qdisc at the link would. It speaks nfnetlink_queue
// (linux/netfilter/nfnetlink_queue.h) itself, over a netlink socket created inside the
// namespace and served by goroutines of the test process.

// nfnetlink_queue message types, attributes and values.
const (
	nfqnlMsgPacket       = 0 // NFQNL_MSG_PACKET: a packet waits for a verdict
	nfqnlMsgConfig       = 2 // NFQNL_MSG_CONFIG
	nfqnlMsgVerdictBatch = 3 // NFQNL_MSG_VERDICT_BATCH: one verdict for every id up to one
	nfqaPacketHdr        = 1 // NFQA_PACKET_HDR: be32 packet id, be16 protocol, u8 hook
	nfqaVerdictHdr       = 2 // NFQA_VERDICT_HDR: be32 verdict, be32 id
	nfqaCfgCmd           = 1 // NFQA_CFG_CMD: u8 command, u8 pad, be16 family
	nfqaCfgParams        = 2 // NFQA_CFG_PARAMS: be32 copy range, u8 copy mode
	nfqaCfgQueueMaxlen   = 3 // NFQA_CFG_QUEUE_MAXLEN: be32
	nfqnlCfgCmdBind      = 1
	nfqnlCopyMeta        = 1 // no payload: the id is all the delayer needs
	nfAccept             = 1
	nlaTypeMask          = 0x3fff // NLA_TYPE_MASK: the type without the nested and byte-order flags
	// delayerMaxlen bounds the packets held at once (the kernel drops beyond it, as
	// netem does beyond its limit): 8192 in 20 ms is 400,000 packets a second.
	delayerMaxlen = 8192
)

// delayer holds the packets of one NFQUEUE queue for a fixed time.
type delayer struct {
	f     *os.File // the netlink socket, non-blocking, in the runtime's poller
	queue uint16
	delay time.Duration
	held  chan heldPacket // in arrival order, which is id order
	quit  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	err     error
	overrun int // receive-buffer overruns: packets the kernel dropped
}

type heldPacket struct {
	id uint32
	at time.Time // when to accept it
}

// startDelayer binds queue inside namespace ns and accepts each packet delay after
// it arrives, until stop.
func startDelayer(ns string, queue uint16, delay time.Duration) (*delayer, error) {
	fd, err := netlinkSocketIn(ns)
	if err != nil {
		return nil, err
	}
	// Room for bursts; SO_RCVBUFFORCE ignores rmem_max (root only).
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding a netlink socket in %s: %w", ns, err)
	}
	d := &delayer{
		f:     os.NewFile(uintptr(fd), "nfqueue in "+ns),
		queue: queue,
		delay: delay,
		held:  make(chan heldPacket, delayerMaxlen),
		quit:  make(chan struct{}),
	}
	// One message binds the queue, asks for metadata only and sets its length; the
	// kernel acknowledges it once all three are done.
	var params [5]byte
	binary.BigEndian.PutUint32(params[:], 0)
	params[4] = nfqnlCopyMeta
	var maxlen [4]byte
	binary.BigEndian.PutUint32(maxlen[:], delayerMaxlen)
	msg := nfqMessage(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, queue,
		nlAttr(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}),
		nlAttr(nfqaCfgParams, params[:]),
		nlAttr(nfqaCfgQueueMaxlen, maxlen[:]))
	if err := d.configure(msg); err != nil {
		d.f.Close()
		return nil, fmt.Errorf("binding NFQUEUE %d in %s: %w", queue, ns, err)
	}
	d.wg.Add(2)
	go d.receive()
	go d.release()
	return d, nil
}

// netlinkSocketIn creates a non-blocking NETLINK_NETFILTER socket inside namespace
// ns: a socket belongs to the namespace of the thread that created it. The thread
// goes into ns and back; should it fail to come back, it stays locked and the
// runtime ends it with its goroutine.
func netlinkSocketIn(ns string) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err, back := func() (int, error, bool) {
			target, err := os.Open(filepath.Join("/run/netns", ns))
			if err != nil {
				return -1, err, true
			}
			defer target.Close()
			home, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return -1, err, true
			}
			defer home.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				return -1, fmt.Errorf("entering %s: %w", ns, err), true
			}
			fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
			if err != nil {
				err = fmt.Errorf("netlink socket in %s: %w", ns, err)
			}
			return fd, err, unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil
		}()
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// configure sends a configuration message and waits for the kernel's answer.
// Packets queued meanwhile are held like any other.
func (d *delayer) configure(msg []byte) error {
	if _, err := d.f.Write(msg); err != nil {
		return err
	}
	if err := d.f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer d.f.SetReadDeadline(time.Time{})
	buf := make([]byte, 1<<16)
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			return err
		}
		if errno, acked := d.parse(buf[:n], time.Now()); acked {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}

// receive reads the queued packets' notices until the socket is closed.
func (d *delayer) receive() {
	defer d.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := d.f.Read(buf)
		switch {
		case err == nil:
			if errno, acked := d.parse(buf[:n], time.Now()); acked && errno != 0 {
				d.fail(fmt.Errorf("the kernel reports: %w", errno))
			}
		case errors.Is(err, unix.ENOBUFS):
			// The receive buffer overflowed: the kernel dropped those packets.
			d.mu.Lock()
			d.overrun++
			d.mu.Unlock()
		case errors.Is(err, os.ErrClosed):
			return
		default:
			d.fail(err)
			return
		}
	}
}

// release accepts the held packets as they fall due, every packet due at once in
// one batch verdict: ids grow in arrival order, and every packet waits as long.
func (d *delayer) release() {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var next *heldPacket
	for {
		if next == nil {
			select {
			case p := <-d.held:
				next = &p
			case <-d.quit:
				return
			}
		}
		if wait := time.Until(next.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.quit:
				return
			}
		}
		last := next.id
		next = nil
	more:
		for {
			select {
			case p := <-d.held:
				if time.Until(p.at) > 0 {
					next = &p
					break more
				}
				last = p.id
			default:
				break more
			}
		}
		var verdict [8]byte
		binary.BigEndian.PutUint32(verdict[:], nfAccept)
		binary.BigEndian.PutUint32(verdict[4:], last)
		msg := nfqMessage(nfqnlMsgVerdictBatch, unix.NLM_F_REQUEST, d.queue, nlAttr(nfqaVerdictHdr, verdict[:]))
		if _, err := d.f.Write(msg); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				d.fail(fmt.Errorf("verdict: %w", err))
			}
			return
		}
	}
}

// parse goes through the netlink messages in b: each packet notice is held until
// now+delay; an acknowledgement or error ends the scan with its errno.
func (d *delayer) parse(b []byte, now time.Time) (errno unix.Errno, acked bool) {
	for len(b) >= unix.NLMSG_HDRLEN {
		size := int(binary.NativeEndian.Uint32(b))
		typ := binary.NativeEndian.Uint16(b[4:])
		if size < unix.NLMSG_HDRLEN || size > len(b) {
			return 0, false
		}
		payload := b[unix.NLMSG_HDRLEN:size]
		switch {
		case typ == unix.NLMSG_ERROR && len(payload) >= 4:
			return unix.Errno(-int32(binary.NativeEndian.Uint32(payload))), true
		case typ == unix.NFNL_SUBSYS_QUEUE<<8|nfqnlMsgPacket && len(payload) >= 4:
			for attrs := payload[4:]; len(attrs) >= unix.SizeofNlAttr; {
				alen := int(binary.NativeEndian.Uint16(attrs))
				if alen < unix.SizeofNlAttr || alen > len(attrs) {
					break
				}
				if binary.NativeEndian.Uint16(attrs[2:])&nlaTypeMask == nfqaPacketHdr && alen >= 8 {
					d.held <- heldPacket{id: binary.BigEndian.Uint32(attrs[4:]), at: now.Add(d.delay)}
					break
				}
				attrs = attrs[min(nlAlign(alen), len(attrs)):]
			}
		}
		b = b[min(nlAlign(size), len(b)):]
	}
	return 0, false
}

func (d *delayer) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
	}
}

// stop closes the socket (the kernel drops what is still held) and returns the
// first error the delayer met.
func (d *delayer) stop() error {
	close(d.quit)
	closeErr := d.f.Close()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil && d.overrun > 0 {
		d.err = fmt.Errorf("%d receive-buffer overruns (packets dropped)", d.overrun)
	}
	return errors.Join(d.err, closeErr)
}

// nfqMessage builds an nfnetlink_queue message for queue: netlink header, nfgenmsg,
// attributes.
func nfqMessage(msgType, flags, queue uint16, attrs ...[]byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, 64)
	b = append(b, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0)
	binary.BigEndian.PutUint16(b[unix.NLMSG_HDRLEN+2:], queue)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_QUEUE<<8|msgType)
	binary.NativeEndian.PutUint16(b[6:], flags)
	return b
}

// nlAttr is one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, payload []byte) []byte {
	b := make([]byte, unix.SizeofNlAttr, nlAlign(unix.SizeofNlAttr+len(payload)))
	binary.NativeEndian.PutUint16(b, uint16(unix.SizeofNlAttr+len(payload)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, payload...)
	return b[:cap(b)]
}

func nlAlign(n int) int { return (n + 3) &^ 3 }
