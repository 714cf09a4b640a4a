package testbed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/admin"
	"github.com/crust-p2p/crust/sim/testbed"
	"go.uber.org/goleak"
)

// The real binaries, built once for the tests that run them in the testbed.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// crustBin returns the path of a crust command built from this tree (crust-node,
// stun-test, crust-lan).
func crustBin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "crust-testbed-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../../cmd/crust-node", "../../cmd/stun-test", "../../cmd/crust-lan").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		// Every test's processes, event watchers and netem queue readers are gone by now.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// node is a crust-node daemon running inside a testbed namespace, driven through
// its admin socket (a path on the shared filesystem, reachable from any namespace).
type node struct {
	t     *testing.T
	proc  *testbed.Proc
	admin string
	id    string
	c     *admin.Client // for requests; an events stream needs its own (newClient)
}

// startNode runs crust-node in host's namespace, listening on its address at port,
// with extra config lines. The beacon is off: the testbed's LANs are for the NAT
// tests.
func startNode(t *testing.T, n *testbed.Net, host testbed.Host, port int, extra string) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir = %q
listen_addresses = [%q]
listen_port = %d
beacon = false
%s
[limits]
keepalive_interval = "500ms"
peer_timeout = "5s"
step_timeout = "3s"
shutdown_grace = "1s"
`, dir, host.Addr.String(), port, extra)
	path := filepath.Join(dir, "crust.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := n.Start(t, host.NS, crustBin(t, "crust-node"), "--config", path, "--loglevel", "debug")
	m, err := p.WaitForMatch(regexp.MustCompile(`ready (\S+) admin=(\S+)`), 20*time.Second)
	if err != nil {
		t.Fatalf("crust-node on %s: %v\n%s", host.Name, err, p.Output())
	}
	return &node{t: t, proc: p, id: m[1], admin: m[2]}
}

// client returns the node's admin client for requests, dialled once.
func (d *node) client() *admin.Client {
	d.t.Helper()
	if d.c == nil {
		d.c = d.newClient()
	}
	return d.c
}

// newClient dials the admin API again, for an events stream.
func (d *node) newClient() *admin.Client {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, d.admin)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

func (d *node) self() admin.Self {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := d.client().Self(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

// waitSelf polls the daemon's self until ok holds; what it waits for (a STUN answer,
// a UPnP mapping) gives no event to wait on.
func (d *node) waitSelf(what string, timeout time.Duration, ok func(admin.Self) bool) admin.Self {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := d.self()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: timed out after %v; self = %+v\n%s", what, timeout, s, d.proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGINT and waits for a clean exit.
func (d *node) stop() {
	d.t.Helper()
	if err := syscall.Kill(d.proc.Pid(), syscall.SIGINT); err != nil {
		d.t.Fatal(err)
	}
	if err := d.proc.Wait(15 * time.Second); err != nil {
		d.t.Fatalf("crust-node did not exit 0 after SIGINT: %v\n%s", err, d.proc.Output())
	}
}

// stunTest runs stun-test in ns and returns its exit code, stdout and stderr.
func stunTest(t *testing.T, n *testbed.Net, ns string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, crustBin(t, "stun-test")}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// Behind each kind of router, crust-node learns its external address from coturn
// over UDP (its QUIC socket) and TCP (its listen port) and classifies the NAT, and
// stun-test prints exactly the address the NAT gives.
func TestSTUNBehindRouters(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	coturn := []string{
		netip.AddrPortFrom(n.STUN.Addrs[0], n.STUN.Port).String(),
		netip.AddrPortFrom(n.STUN.Addrs[1], n.STUN.Port).String(),
	}
	servers, _ := json.Marshal(coturn)
	for _, tc := range []struct {
		host     testbed.Host
		public   netip.Addr // the address the NAT gives the host
		behavior string
		samePort bool // the NAT keeps the local port
	}{
		{n.H1A, n.NAT1.WAN, "endpoint-independent", true},
		{n.H2A, n.NAT2.WAN, "endpoint-dependent", false},
		{n.H3A, n.H3A.Addr, "no-nat", true},
	} {
		t.Run(tc.host.Name, func(t *testing.T) {
			const port = 40100
			d := startNode(t, n, tc.host, port, "upnp = false\nstun_servers = "+string(servers))
			s := d.waitSelf("STUN check", 20*time.Second, func(s admin.Self) bool { return s.NAT.Checked != nil })
			if s.NAT.Behavior != tc.behavior {
				t.Fatalf("behaviour %q, want %q (stun %v, errors %v)", s.NAT.Behavior, tc.behavior, s.NAT.STUN, s.NAT.Errors)
			}
			if len(s.NAT.Errors) != 0 {
				t.Fatalf("STUN errors: %v", s.NAT.Errors)
			}
			if !strings.HasSuffix(s.Contact, ",nat:"+tc.behavior) {
				t.Fatalf("contact %s does not carry the NAT behaviour %s", s.Contact, tc.behavior)
			}
			if tc.samePort {
				want := []string{
					fmt.Sprintf("tcp://%v:%d", tc.public, port),
					fmt.Sprintf("quic://%v:%d", tc.public, port),
				}
				if !slices.Equal(s.NAT.STUN, want) {
					t.Fatalf("STUN endpoints %v, want %v", s.NAT.STUN, want)
				}
				if !strings.Contains(s.Contact, "reflected:"+want[0]) {
					t.Fatalf("contact %s lacks %s", s.Contact, want[0])
				}
			} else {
				// Behind an endpoint-dependent NAT: hints (the router's address, a base
				// for port prediction), on other ports than ours.
				if len(s.NAT.STUN) != 2 {
					t.Fatalf("STUN endpoints %v behind an endpoint-dependent NAT, want a hint per protocol", s.NAT.STUN)
				}
				for _, ep := range s.NAT.STUN {
					if !strings.Contains(ep, "://"+tc.public.String()+":") {
						t.Fatalf("STUN hint %s is not on the router's address %v", ep, tc.public)
					}
				}
			}
			d.stop()

			// stun-test, from a port of its own: one line, the NAT's address.
			for _, proto := range []string{"--udp", "--tcp"} {
				const testPort = 40200
				code, out, errOut := stunTest(t, n, tc.host.NS, proto, "--port", fmt.Sprint(testPort), coturn[0])
				got, err := netip.ParseAddrPort(strings.TrimSpace(out))
				if code != 0 || err != nil || got.Addr() != tc.public || (tc.samePort && got.Port() != testPort) {
					t.Fatalf("stun-test %s: exit %d, stdout %q, stderr %q; want %v:%d", proto, code, out, errOut, tc.public, testPort)
				}
				// Both coturn addresses: they agree unless the NAT maps per destination.
				code, out, errOut = stunTest(t, n, tc.host.NS, proto, "--port", fmt.Sprint(testPort+1), coturn[0], coturn[1])
				mismatch := strings.Contains(errOut, "Previously resolved addresses do not match")
				if tc.behavior == "endpoint-dependent" {
					if code != 1 || !mismatch {
						t.Fatalf("stun-test %s, two servers behind a symmetric NAT: exit %d, stderr %q; want the mismatch", proto, code, errOut)
					}
				} else if code != 0 || mismatch {
					t.Fatalf("stun-test %s, two servers: exit %d, stdout %q, stderr %q", proto, code, out, errOut)
				}
			}
		})
	}
	t.Run("DeadServer", func(t *testing.T) {
		dead := netip.AddrPortFrom(n.STUN.Addrs[0], 3999).String()
		for _, proto := range []string{"--udp", "--tcp"} {
			code, _, errOut := stunTest(t, n, n.H1A.NS, proto, "--timeout", "3s", coturn[0], dead)
			if code != 1 || !strings.Contains(errOut, "ERROR While resolving {server="+dead+"}: ") {
				t.Fatalf("stun-test %s with a dead server: exit %d, stderr %q", proto, code, errOut)
			}
		}
	})
}

// upnpList returns miniupnpd's port mappings as upnpc -l prints them.
func upnpList(t *testing.T, n *testbed.Net) string {
	t.Helper()
	out, err := n.Run(n.H1B.NS, "upnpc", "-u", n.UPnPRootURL, "-l")
	if err != nil {
		t.Fatalf("upnpc -l: %v\n%s", err, out)
	}
	return out
}

// mappingLine matches upnpc -l's line for a mapping: index, protocol,
// "40300->192.168.1.10:40300", the quoted description and remote host, and the
// lease left in seconds (captured).
func mappingLine(proto string, port int, internal netip.Addr) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`(?m)^\s*\d+\s+%s\s+%d->%s:%d\s+'[^']*'\s+'[^']*'\s+(\d+)`, proto, port, regexp.QuoteMeta(internal.String()), port))
}

// waitMappings polls upnpc -l until present says the mappings look as wanted.
func waitMappings(t *testing.T, n *testbed.Net, what string, timeout time.Duration, present func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := upnpList(t, n)
		if present(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out after %v; upnpc -l:\n%s", what, timeout, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Behind the miniupnpd router, crust-node maps its TCP and UDP port; a node on the
// internet connects through the mapping (ladder step tcp-upnp); the lease is renewed;
// a restarted miniupnpd gets the mappings again; a clean stop deletes them.
func TestUPnPWithMiniupnpd(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	const port = 40300
	const lease = 6                                                                            // seconds
	h := startNode(t, n, n.H1A, port, fmt.Sprintf("upnp = true\nupnp_lease = \"%ds\"", lease)) // found by SSDP on its LAN
	tcp, udp := mappingLine("TCP", port, n.H1A.Addr), mappingLine("UDP", port, n.H1A.Addr)
	both := func(out string) bool { return tcp.MatchString(out) && udp.MatchString(out) }
	waitMappings(t, n, "crust-node's TCP and UDP mappings", 20*time.Second, both)
	s := h.waitSelf("UPnP endpoints in self", 10*time.Second, func(s admin.Self) bool { return len(s.NAT.UPnP) == 2 })
	want := []string{fmt.Sprintf("tcp://%v:%d", n.NAT1.WAN, port), fmt.Sprintf("quic://%v:%d", n.NAT1.WAN, port)}
	if !slices.Equal(s.NAT.UPnP, want) || s.NAT.ExternalIP != n.NAT1.WAN.String() {
		t.Fatalf("self's UPnP %v (gateway %s), want %v (gateway %v)", s.NAT.UPnP, s.NAT.ExternalIP, want, n.NAT1.WAN)
	}

	// A node on the internet side connects through the TCP mapping: the direct
	// endpoint (a private address) fails, the UPnP one works.
	pub := startNode(t, n, n.Pub, 40400, "upnp = false")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := pub.client().Connect(ctx, s.Contact)
	if err != nil || res.Kind != "tcp-upnp" || res.ID != h.id {
		t.Fatalf("pub connecting to h1a by its contact %s: %+v, %v; want tcp-upnp", s.Contact, res, err)
	}

	// Renewal: the lease left goes up again before it runs out.
	remaining := func(out string) int {
		var left int
		if m := tcp.FindStringSubmatch(out); m != nil {
			fmt.Sscan(m[1], &left)
		}
		return left
	}
	low := lease + 1
	waitMappings(t, n, "the lease being renewed", 3*lease*time.Second, func(out string) bool {
		left := remaining(out)
		if left == 0 {
			t.Fatalf("the TCP mapping is gone before renewal:\n%s", out)
		}
		renewed := left > low
		low = min(low, left)
		return renewed && low < lease
	})

	// miniupnpd restarts with no mappings; crust-node puts them back.
	if err := n.RestartUPnP(); err != nil {
		t.Fatal(err)
	}
	if out := upnpList(t, n); tcp.MatchString(out) {
		t.Fatalf("a restarted miniupnpd still lists the mapping:\n%s", out)
	}
	waitMappings(t, n, "the mappings re-created after the gateway restart", 4*lease*time.Second, both)

	// A clean stop deletes them.
	h.stop()
	out := upnpList(t, n)
	if tcp.MatchString(out) || udp.MatchString(out) {
		t.Fatalf("mappings left after a clean stop:\n%s", out)
	}
	if !strings.Contains(h.proc.Output(), "upnp: deleted mapping") {
		t.Fatalf("no deletion logged:\n%s", h.proc.Output())
	}
}
