package testbed_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/sim/testbed"
)

// These tests prove the testbed with the real tools (turnutils_stunclient, stun,
// upnpc, socat, conntrack, ping). They skip unless CRUST_TESTBED=1 and root: run them
// with `make test-nat`.

// TestTestbed checks the default topology, one behaviour per subtest, on one testbed.
func TestTestbed(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})

	t.Run("Routes", func(t *testing.T) {
		// Two routers (nat1, inet) between h1a and pub: the internet is a real hop.
		out := mustRun(t, n, n.H1A.NS, "ping", "-c1", "-W2", n.Pub.Addr.String())
		if !strings.Contains(out, "ttl=62") {
			t.Errorf("h1a -> pub: want ttl=62 (two routers on the way):\n%s", out)
		}
		for _, h := range []testbed.Host{n.H3A, n.H4A} {
			out = mustRun(t, n, h.NS, "ping", "-c1", "-W2", n.STUN.Addrs[0].String())
			if !strings.Contains(out, "ttl=62") {
				t.Errorf("%s -> stun: want ttl=62:\n%s", h.Name, out)
			}
		}
	})

	t.Run("ConeNATPreservesPort", func(t *testing.T) {
		if err := n.FlushConntrack(n.NAT1.NS); err != nil {
			t.Fatal(err)
		}
		server := n.STUN.Addrs[0]
		mapped := turnStunClient(t, n, n.H1A.NS, server, n.STUN.Port)
		if mapped.Addr() != n.NAT1.WAN {
			t.Errorf("h1a's reflexive address %v: want nat1's WAN address %v", mapped, n.NAT1.WAN)
		}
		// The client does not print its local port; nat1's conntrack entry has it.
		local, public := natEntry(t, n, n.NAT1.NS, n.H1A.Addr, server, n.STUN.Port)
		if local != public || public != mapped.Port() {
			t.Errorf("nat1 mapped local port %d to %d, STUN saw %d: want all equal (port preserving)",
				local, public, mapped.Port())
		}
	})

	t.Run("NAT3PreservesPort", func(t *testing.T) {
		if err := n.FlushConntrack(n.NAT3.NS); err != nil {
			t.Fatal(err)
		}
		server := n.STUN.Addrs[1]
		mapped := turnStunClient(t, n, n.H4A.NS, server, n.STUN.Port)
		if mapped.Addr() != n.NAT3.WAN {
			t.Errorf("h4a's reflexive address %v: want nat3's WAN address %v", mapped, n.NAT3.WAN)
		}
		local, public := natEntry(t, n, n.NAT3.NS, n.H4A.Addr, server, n.STUN.Port)
		if local != public || public != mapped.Port() {
			t.Errorf("nat3 mapped local port %d to %d, STUN saw %d: want all equal (port preserving)",
				local, public, mapped.Port())
		}
	})

	t.Run("HolePunchNAT1NAT3", func(t *testing.T) {
		// Two endpoint-independent, port-preserving NATs: once each side has sent to
		// the other's public address from its port, datagrams pass both ways (the
		// first ones die at the far NAT, which has no mapping yet).
		const port1, port4 = 40500, 40501
		side := func(h testbed.Host, port int, peer netip.AddrPort) *testbed.Proc {
			return n.Start(t, h.NS, "sh", "-c", fmt.Sprintf(
				"while :; do echo from-%s; sleep 0.1; done | socat -T5 - UDP:%s,sourceport=%d", h.Name, peer, port))
		}
		a := side(n.H1A, port1, netip.AddrPortFrom(n.NAT3.WAN, port4))
		b := side(n.H4A, port4, netip.AddrPortFrom(n.NAT1.WAN, port1))
		defer a.Kill()
		defer b.Kill()
		if err := a.WaitFor("from-h4a", 5*time.Second); err != nil {
			t.Error(err)
		}
		if err := b.WaitFor("from-h1a", 5*time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("ConeNATOverTCP", func(t *testing.T) {
		mapped := stunOverTCP(t, n, n.H1A.NS, n.STUN.Addrs[1], n.STUN.AltPort)
		if mapped.Addr() != n.NAT1.WAN {
			t.Errorf("h1a's reflexive address over TCP %v: want %v", mapped, n.NAT1.WAN)
		}
	})

	t.Run("SymmetricNAT", func(t *testing.T) {
		mapped := turnStunClient(t, n, n.H2A.NS, n.STUN.Addrs[0], n.STUN.Port)
		if mapped.Addr() != n.NAT2.WAN {
			t.Errorf("h2a's reflexive address %v: want nat2's WAN address %v", mapped, n.NAT2.WAN)
		}
		// From one local port, the two STUN addresses see two different mappings.
		res := stund(t, n, n.H2A.NS, 40100)
		if len(res.mapped) < 2 {
			t.Fatalf("stun printed %d mapped addresses, want 2:\n%s", len(res.mapped), res.out)
		}
		for _, m := range res.mapped {
			if m.Addr() != n.NAT2.WAN {
				t.Errorf("mapped address %v: want nat2's WAN address %v", m, n.NAT2.WAN)
			}
		}
		if res.mapped[0].Port() == res.mapped[1].Port() {
			t.Errorf("both servers saw port %d from one local port: want different ports (symmetric)", res.mapped[0].Port())
		}
	})

	t.Run("FirewallNoNAT", func(t *testing.T) {
		mapped := turnStunClient(t, n, n.H3A.NS, n.STUN.Addrs[1], n.STUN.AltPort)
		if mapped.Addr() != n.H3A.Addr {
			t.Errorf("h3a's reflexive address %v: want its own address %v", mapped, n.H3A.Addr)
		}
	})

	t.Run("StundClassifies", func(t *testing.T) {
		cone := stund(t, n, n.H1A.NS, 40200)
		if !strings.Contains(cone.class, "Independent Mapping") || !strings.Contains(cone.class, "preserves ports") {
			t.Errorf("nat1 classified as %q: want independent mapping, preserved ports", cone.class)
		}
		for _, m := range cone.mapped {
			if m != netip.AddrPortFrom(n.NAT1.WAN, 40200) {
				t.Errorf("behind nat1 from port 40200: mapped %v, want %v:40200", m, n.NAT1.WAN)
			}
		}
		sym := stund(t, n, n.H2A.NS, 40300)
		if !strings.Contains(sym.class, "Dependent Mapping") {
			t.Errorf("nat2 classified as %q: want dependent mapping", sym.class)
		}
		if cone.class == sym.class {
			t.Errorf("nat1 and nat2 both classified as %q", cone.class)
		}
	})

	t.Run("UPnP", func(t *testing.T) {
		out := mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-s")
		if !strings.Contains(out, "ExternalIPAddress = "+n.NAT1.WAN.String()) {
			t.Fatalf("upnpc -s: want ExternalIPAddress = %v:\n%s", n.NAT1.WAN, out)
		}
		listener := startListener(t, n, n.H1A.NS, 7000)
		wan := netip.AddrPortFrom(n.NAT1.WAN, 7000)
		if out, err := dial(n, n.Pub.NS, wan, time.Second); err == nil {
			t.Fatalf("pub reached %v before the mapping existed:\n%s", wan, out)
		}
		h1a := n.H1A.Addr.String()
		out = mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-a", h1a, "7000", "7000", "TCP")
		if !strings.Contains(out, "is redirected to internal "+h1a+":7000") {
			t.Fatalf("upnpc -a: no redirection reported:\n%s", out)
		}
		out = mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-l")
		if !strings.Contains(out, "7000->"+h1a+":7000") {
			t.Errorf("upnpc -l does not list the mapping:\n%s", out)
		}
		out, err := dial(n, n.Pub.NS, wan, 5*time.Second)
		if err != nil {
			t.Fatalf("pub -> %v through the UPnP mapping: %v", wan, err)
		}
		if want := "reached from " + n.Pub.Addr.String(); !strings.Contains(out, want) {
			t.Errorf("pub -> %v: got %q, want %q", wan, out, want)
		}
		if err := listener.WaitFor("accepting connection from AF=2 "+n.Pub.Addr.String(), 5*time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("UnsolicitedInboundDropped", func(t *testing.T) {
		startListener(t, n, n.H1A.NS, 7001)
		startListener(t, n, n.H3A.NS, 7001)
		startListener(t, n, n.H4A.NS, 7001)
		var wg sync.WaitGroup
		for _, to := range []netip.AddrPort{
			netip.AddrPortFrom(n.NAT1.WAN, 7001), // no mapping
			netip.AddrPortFrom(n.NAT2.WAN, 7001),
			netip.AddrPortFrom(n.NAT3.WAN, 7001),
			netip.AddrPortFrom(n.H3A.Addr, 7001), // routable, behind the firewall
		} {
			wg.Go(func() {
				start := time.Now()
				out, err := dial(n, n.Pub.NS, to, time.Second)
				if err == nil {
					t.Errorf("pub reached %v unsolicited:\n%s", to, out)
					return
				}
				if d := time.Since(start); !strings.Contains(err.Error(), "timed out") || d < 900*time.Millisecond {
					t.Errorf("pub -> %v: want a silent drop (connect timeout), got after %v: %v",
						to, d.Round(time.Millisecond), err)
				}
			})
		}
		wg.Wait()
	})

	// IPv6 beside IPv4 where no NAT is: h3a reaches pub, and fw drops what pub
	// sends h3a unsolicited.
	t.Run("IPv6Firewall", func(t *testing.T) {
		startListener6(t, n, n.H3A.NS, 7003)
		startListener6(t, n, n.Pub.NS, 7003)
		out, err := dial(n, n.H3A.NS, netip.AddrPortFrom(n.Pub.Addr6, 7003), 5*time.Second)
		// socat writes the address in full: [2001:0db8:0030:...].
		_, rest, _ := strings.Cut(out, "reached from [")
		from, _, _ := strings.Cut(rest, "]")
		if a, perr := netip.ParseAddr(from); err != nil || perr != nil || a != n.H3A.Addr6 {
			t.Fatalf("h3a -> pub over IPv6: %q, %v; want it reached from %v", out, err, n.H3A.Addr6)
		}
		start := time.Now()
		out, err = dial(n, n.Pub.NS, netip.AddrPortFrom(n.H3A.Addr6, 7003), time.Second)
		if err == nil {
			t.Fatalf("pub reached h3a over IPv6 unsolicited:\n%s", out)
		}
		if d := time.Since(start); !strings.Contains(err.Error(), "timed out") || d < 900*time.Millisecond {
			t.Fatalf("pub -> h3a over IPv6: want a silent drop, got after %v: %v", d.Round(time.Millisecond), err)
		}
	})

	t.Run("RestartUPnP", func(t *testing.T) {
		h1a := n.H1A.Addr.String()
		mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-a", h1a, "7002", "7002", "UDP")
		if out := mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-l"); !strings.Contains(out, "7002->"+h1a+":7002") {
			t.Fatalf("upnpc -l does not list the new mapping:\n%s", out)
		}
		before, err := n.Daemons()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.RestartUPnP(); err != nil {
			t.Fatal(err)
		}
		after, err := n.Daemons()
		if err != nil {
			t.Fatal(err)
		}
		if before["miniupnpd"] == after["miniupnpd"] || alive(before["miniupnpd"]) {
			t.Errorf("miniupnpd pid %d before, %d after: want the old one gone and a new one",
				before["miniupnpd"], after["miniupnpd"])
		}
		out := mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-l")
		if regexp.MustCompile(`\d+->`).MatchString(out) {
			t.Errorf("mappings survived the restart:\n%s", out)
		}
		if out := mustRun(t, n, n.NAT1.NS, "iptables-legacy", "-t", "nat", "-S", "MINIUPNPD"); strings.Contains(out, "DNAT") {
			t.Errorf("DNAT rules survived the restart:\n%s", out)
		}
		if out := mustRun(t, n, n.H1A.NS, "upnpc", "-u", n.UPnPRootURL, "-s"); !strings.Contains(out, n.NAT1.WAN.String()) {
			t.Errorf("the new miniupnpd does not answer:\n%s", out)
		}
	})

	t.Run("FlushConntrack", func(t *testing.T) {
		turnStunClient(t, n, n.H1A.NS, n.STUN.Addrs[0], n.STUN.Port)
		count := func() int {
			out := mustRun(t, n, n.NAT1.NS, "conntrack", "-L", "-d", n.STUN.Addrs[0].String())
			m := regexp.MustCompile(`(\d+) flow entries`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("conntrack -L: no count:\n%s", out)
			}
			c, _ := strconv.Atoi(m[1])
			return c
		}
		if c := count(); c == 0 {
			t.Fatal("no conntrack entry on nat1 after a STUN request")
		}
		if err := n.FlushConntrack(n.NAT1.NS); err != nil {
			t.Fatal(err)
		}
		if c := count(); c != 0 {
			t.Errorf("%d conntrack entries left after a flush", c)
		}
	})
}

// TestInboundReject: routers that reject unsolicited packets make a connection
// attempt fail at once (TCP RST, ICMP port unreachable).
func TestInboundReject(t *testing.T) {
	t.Parallel()
	n := testbed.Up(t, testbed.Options{Inbound: map[string]testbed.Inbound{
		"nat1": testbed.InboundReject, "nat2": testbed.InboundReject, "fw": testbed.InboundReject,
		"nat3": testbed.InboundReject,
	}})
	startListener(t, n, n.H3A.NS, 7001)
	for _, to := range []netip.AddrPort{
		netip.AddrPortFrom(n.NAT1.WAN, 7001),
		netip.AddrPortFrom(n.NAT2.WAN, 7001),
		netip.AddrPortFrom(n.NAT3.WAN, 7001),
		netip.AddrPortFrom(n.H3A.Addr, 7001),
	} {
		// "Connection refused" is the RST; a drop would end in "timed out". No bound
		// on the time: on a loaded machine, it says more about the scheduler.
		start := time.Now()
		_, err := dial(n, n.Pub.NS, to, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "Connection refused") {
			t.Errorf("pub -> %v (TCP): want connection refused, got %v", to, err)
		}
		t.Logf("pub -> %v (TCP): refused after %v", to, time.Since(start).Round(time.Millisecond))
	}
	// UDP: the reply to the datagram is ICMP port unreachable, which the socket
	// reports on its next read.
	out, err := n.Run(n.Pub.NS, "sh", "-c",
		fmt.Sprintf("echo hi | socat -T2 - UDP:%s", netip.AddrPortFrom(n.NAT1.WAN, 7001)))
	if err == nil || !strings.Contains(out, "Connection refused") {
		t.Errorf("pub -> nat1 WAN (UDP): want ICMP port unreachable (refused), got %v:\n%s", err, out)
	}
}

// TestInboundOpen: with no filter, the firewall routes anything to its LAN and a NAT
// router's own stack answers packets that match no mapping.
func TestInboundOpen(t *testing.T) {
	t.Parallel()
	n := testbed.Up(t, testbed.Options{Inbound: map[string]testbed.Inbound{
		"nat1": testbed.InboundOpen, "fw": testbed.InboundOpen,
	}})
	for _, r := range []testbed.Router{n.NAT2, n.NAT3} {
		if r.Inbound != testbed.InboundDrop {
			t.Errorf("%s's policy %q: want the default, drop", r.Name, r.Inbound)
		}
	}
	startListener(t, n, n.H3A.NS, 7001)
	to := netip.AddrPortFrom(n.H3A.Addr, 7001)
	out, err := dial(n, n.Pub.NS, to, 5*time.Second)
	if err != nil || !strings.Contains(out, "reached from "+n.Pub.Addr.String()) {
		t.Errorf("pub -> %v through an open firewall: %v:\n%s", to, err, out)
	}
	to = netip.AddrPortFrom(n.NAT1.WAN, 7001)
	if _, err := dial(n, n.Pub.NS, to, 5*time.Second); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("pub -> %v (no mapping, no filter): want the router's own RST, got %v", to, err)
	}
}

// TestOptions: the conntrack UDP timeout reaches the routers; Netem delays the WAN
// links (with tc netem, or else the NFQUEUE delayer).
func TestOptions(t *testing.T) {
	t.Parallel()
	t.Run("UDPTimeout", func(t *testing.T) {
		n := testbed.Up(t, testbed.Options{UDPTimeout: 5 * time.Second})
		for _, r := range []testbed.Router{n.NAT1, n.NAT2, n.FW, n.NAT3} {
			out := mustRun(t, n, r.NS, "sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout",
				"net.netfilter.nf_conntrack_udp_timeout_stream")
			if strings.Fields(out)[0] != "5" || strings.Fields(out)[1] != "5" {
				t.Errorf("%s: UDP timeouts %q, want 5 and 5", r.Name, out)
			}
		}
	})
	t.Run("Netem", func(t *testing.T) {
		const delay = 20 * time.Millisecond
		// fw lets pings in, for a path across two WAN links.
		n := testbed.Up(t, testbed.Options{Netem: delay, Inbound: map[string]testbed.Inbound{"fw": testbed.InboundOpen}})
		t.Logf("WAN links delayed by %v each way (%s)", n.Netem, n.NetemMethod)
		minRTT := func(from testbed.Host, to netip.Addr) time.Duration {
			t.Helper()
			out := mustRun(t, n, from.NS, "ping", "-c3", "-i0.2", "-W2", to.String())
			m := regexp.MustCompile(`min/avg/max/mdev = ([0-9.]+)/`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("ping %s -> %v printed no round-trip times:\n%s", from.Name, to, out)
			}
			ms, _ := strconv.ParseFloat(m[1], 64)
			return time.Duration(ms * float64(time.Millisecond))
		}
		stun := testbed.Host{Name: "stun", NS: n.STUN.NS}
		base := minRTT(stun, n.Pub.Addr) // no router's WAN link on the way
		one := minRTT(n.H1A, n.Pub.Addr) // nat1's, both ways
		two := minRTT(n.H1A, n.H3A.Addr) // nat1's and fw's, both ways
		t.Logf("RTT stun-pub %v, h1a-pub %v, h1a-h3a %v", base, one, two)
		// Upper bounds catch a delayer that holds packets too long (pings are 200 ms
		// apart: one waiting for the next would show).
		for _, c := range []struct {
			what     string
			rtt      time.Duration
			min, max time.Duration
		}{
			{"stun -> pub", base, 0, delay},
			{"h1a -> pub", one, 2 * delay, 2*delay + 50*time.Millisecond},
			{"h1a -> h3a", two, 4 * delay, 4*delay + 80*time.Millisecond},
		} {
			if c.rtt < c.min || c.rtt > c.max {
				t.Errorf("%s: RTT %v, want %v to %v", c.what, c.rtt, c.min, c.max)
			}
		}
		// UDP and TCP through the delayed links and the NATs.
		if mapped := turnStunClient(t, n, n.H4A.NS, n.STUN.Addrs[0], n.STUN.Port); mapped.Addr() != n.NAT3.WAN {
			t.Errorf("h4a's reflexive address %v: want %v", mapped, n.NAT3.WAN)
		}
		startListener(t, n, n.Pub.NS, 7000)
		out, err := dial(n, n.H1A.NS, netip.AddrPortFrom(n.Pub.Addr, 7000), 5*time.Second)
		if err != nil || !strings.Contains(out, "reached from "+n.NAT1.WAN.String()) {
			t.Errorf("h1a -> pub over TCP: %v:\n%s", err, out)
		}
	})
}

// TestTeardownLeavesNothing: once the test that brought a testbed up ends, its
// namespaces, run directory and processes (daemons, Start's, and strays started
// any other way inside a namespace) are gone.
func TestTeardownLeavesNothing(t *testing.T) {
	var (
		n    *testbed.Net
		pids []int
	)
	t.Run("Up", func(t *testing.T) {
		n = testbed.Up(t, testbed.Options{})
		daemons, err := n.Daemons()
		if err != nil {
			t.Fatal(err)
		}
		for name, pid := range daemons {
			if !alive(pid) {
				t.Errorf("daemon %s (pid %d) is not running", name, pid)
			}
			pids = append(pids, pid)
		}
		pids = append(pids, n.Start(t, n.H1A.NS, "sleep", "300").Pid())
		// A stray: its parent exits at once, nobody but the teardown knows it.
		out := mustRun(t, n, n.H1B.NS, "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!")
		stray, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("stray pid %q: %v", out, err)
		}
		pids = append(pids, stray)
	})
	if n == nil {
		t.Skip("no testbed")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, n.Prefix+"-") {
			t.Errorf("namespace left: %s", line)
		}
	}
	for _, ns := range n.Namespaces() {
		if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left (stat: %v)", ns, err)
		}
	}
	if _, err := os.Stat(n.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s left (stat: %v)", n.Dir, err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
}

// mustRun runs a command in ns and fails the test if it fails.
func mustRun(t *testing.T, n *testbed.Net, ns string, args ...string) string {
	t.Helper()
	out, err := n.Run(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var reflexive = regexp.MustCompile(`UDP reflexive addr: (\S+)\n`)

// turnStunClient asks coturn for ns's reflexive address with turnutils_stunclient.
// The client prints it at once, then waits forever for a change-request answer the
// NAT filters out: it is killed once the address is out (`timeout 3` is the backstop).
func turnStunClient(t *testing.T, n *testbed.Net, ns string, server netip.Addr, port uint16) netip.AddrPort {
	t.Helper()
	p := n.Start(t, ns, "timeout", "3", "turnutils_stunclient", "-p", strconv.Itoa(int(port)), server.String())
	defer p.Kill()
	m, err := p.WaitForMatch(reflexive, 5*time.Second)
	if err != nil {
		t.Fatalf("turnutils_stunclient %v:%d from %s: %v", server, port, ns, err)
	}
	ap, err := netip.ParseAddrPort(m[1])
	if err != nil {
		t.Fatalf("turnutils_stunclient: %v", err)
	}
	return ap
}

// natEntry finds the router's conntrack entry for UDP from host to server:port and
// returns the host's local port and the port the router mapped it to.
func natEntry(t *testing.T, n *testbed.Net, router string, host, server netip.Addr, port uint16) (local, public uint16) {
	t.Helper()
	out := mustRun(t, n, router, "conntrack", "-L", "-p", "udp", "-s", host.String(),
		"-d", server.String(), "--dport", strconv.Itoa(int(port)))
	for _, line := range strings.Split(out, "\n") {
		sports := regexp.MustCompile(`sport=(\d+)`).FindAllStringSubmatch(line, -1)
		dports := regexp.MustCompile(`dport=(\d+)`).FindAllStringSubmatch(line, -1)
		if len(sports) == 2 && len(dports) == 2 {
			l, _ := strconv.Atoi(sports[0][1])
			p, _ := strconv.Atoi(dports[1][1])
			return uint16(l), uint16(p)
		}
	}
	t.Fatalf("no conntrack entry on %s for %v -> %v:%d:\n%s", router, host, server, port, out)
	return 0, 0
}

// stunOverTCP sends one STUN Binding request over TCP with socat and decodes the
// XOR-MAPPED-ADDRESS of the answer.
func stunOverTCP(t *testing.T, n *testbed.Net, ns string, server netip.Addr, port uint16) netip.AddrPort {
	t.Helper()
	// Binding request, no attributes, magic cookie, transaction ID "crust-testbd".
	const request = `\000\001\000\000\041\022\244\102crust-testbd`
	out := mustRun(t, n, ns, "sh", "-c", fmt.Sprintf("printf '%s' | socat -t2 - TCP:%s,connect-timeout=3 | od -An -v -tx1",
		request, netip.AddrPortFrom(server, port)))
	msg, err := hex.DecodeString(strings.Join(strings.Fields(out), ""))
	if err != nil {
		t.Fatalf("STUN over TCP: %v:\n%s", err, out)
	}
	ap, err := xorMappedAddress(msg)
	if err != nil {
		t.Fatalf("STUN over TCP: %v (% x)", err, msg)
	}
	return ap
}

// xorMappedAddress decodes the IPv4 XOR-MAPPED-ADDRESS (RFC 5389 section 15.2) of a
// Binding success response.
func xorMappedAddress(msg []byte) (netip.AddrPort, error) {
	const cookie = 0x2112a442
	if len(msg) < 20 || binary.BigEndian.Uint16(msg) != 0x0101 {
		return netip.AddrPort{}, errors.New("not a Binding success response")
	}
	for attrs := msg[20:]; len(attrs) >= 4; {
		typ, size := binary.BigEndian.Uint16(attrs), int(binary.BigEndian.Uint16(attrs[2:]))
		if len(attrs) < 4+size {
			break
		}
		if v := attrs[4 : 4+size]; typ == 0x0020 && size == 8 && v[1] == 0x01 {
			var ip [4]byte
			binary.BigEndian.PutUint32(ip[:], binary.BigEndian.Uint32(v[4:])^cookie)
			return netip.AddrPortFrom(netip.AddrFrom4(ip), binary.BigEndian.Uint16(v[2:])^cookie>>16), nil
		}
		attrs = attrs[4+(size+3)&^3:]
	}
	return netip.AddrPort{}, errors.New("no IPv4 XOR-MAPPED-ADDRESS")
}

// stundResult is what the RFC 3489 client reported.
type stundResult struct {
	mapped []netip.AddrPort // one per answer that reached us: primary, then the other address
	class  string           // the "Primary:" line
	out    string
}

var mappedLine = regexp.MustCompile(`(?m)^MappedAddress = (\S+)`)

// stund runs the RFC 3489 client (stun) in ns against stund from localPort. Its exit
// status encodes the NAT class, so only its output counts.
func stund(t *testing.T, n *testbed.Net, ns string, localPort int) stundResult {
	t.Helper()
	server := netip.AddrPortFrom(n.STUN.Addrs[0], n.STUN.StundPort)
	out, _ := n.Run(ns, "stun", server.String(), "-v", "-p", strconv.Itoa(localPort))
	res := stundResult{out: out}
	for _, m := range mappedLine.FindAllStringSubmatch(out, -1) {
		ap, err := netip.ParseAddrPort(m[1])
		if err != nil {
			t.Fatalf("stun: %v", err)
		}
		res.mapped = append(res.mapped, ap)
	}
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "Primary: "); ok {
			res.class = strings.TrimSpace(c)
		}
	}
	if res.class == "" || len(res.mapped) == 0 {
		t.Fatalf("stun %v from %s printed no classification:\n%s", server, ns, out)
	}
	return res
}

// startListener runs a TCP server in ns that answers every connection with "reached
// from <peer address>" and returns once it listens.
func startListener(t *testing.T, n *testbed.Net, ns string, port int) *testbed.Proc {
	t.Helper()
	return startSocatListener(t, n, ns, "TCP-LISTEN", port)
}

// startListener6 is startListener over IPv6.
func startListener6(t *testing.T, n *testbed.Net, ns string, port int) *testbed.Proc {
	t.Helper()
	return startSocatListener(t, n, ns, "TCP6-LISTEN", port)
}

// startSocatListener runs socat's listen address kind (TCP-LISTEN, TCP6-LISTEN) on
// port in ns, answering as startListener says.
func startSocatListener(t *testing.T, n *testbed.Net, ns, kind string, port int) *testbed.Proc {
	t.Helper()
	p := n.Start(t, ns, "socat", "-d", "-d", fmt.Sprintf("%s:%d,reuseaddr,fork", kind, port),
		`SYSTEM:echo reached from $SOCAT_PEERADDR`)
	if err := p.WaitFor("listening on", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// dial connects from ns to a TCP address and returns what the server sent.
func dial(n *testbed.Net, ns string, to netip.AddrPort, timeout time.Duration) (string, error) {
	return n.Run(ns, "socat", "-u", fmt.Sprintf("TCP:%s,connect-timeout=%g", to, timeout.Seconds()), "STDOUT")
}

// alive reports whether pid is a running process (a zombie waiting for its parent
// to reap it counts as gone).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
