package testbed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust/admin"
	"github.com/crust-p2p/crust/sim/testbed"
)

// Rounds of each hole-punch case; the target is every one of them.
const punchRounds = 20

// punchNodes is a rendezvous node R on the public host and two nodes A and B behind
// routers, each told R's contact and the coturn servers.
type punchNodes struct {
	n       *testbed.Net
	r, a, b *node
	ha, hb  testbed.Host
}

// startPunchNodes starts R on pub and A, B on ha, hb with protocols (TOML list) and
// waits until A and B are connected to R and know their external endpoints.
func startPunchNodes(t *testing.T, n *testbed.Net, ha, hb testbed.Host, protocols string) *punchNodes {
	t.Helper()
	return startPunchNodesOn(t, n, n.Pub, ha, hb, protocols, n.STUN.Addrs)
}

// startPunchNodesOn is startPunchNodes with R on rh and coturn at stun (the IPv6
// plane: hosts whose Addr is their IPv6 address, coturn's IPv6 addresses).
func startPunchNodesOn(t *testing.T, n *testbed.Net, rh, ha, hb testbed.Host, protocols string, stun [2]netip.Addr) *punchNodes {
	t.Helper()
	coturn, _ := json.Marshal([]string{
		netip.AddrPortFrom(stun[0], n.STUN.Port).String(),
		netip.AddrPortFrom(stun[1], n.STUN.Port).String(),
	})
	r := startNode(t, n, rh, 40500, "upnp = false\nprotocols = "+protocols)
	rContact, _ := json.Marshal([]string{r.self().Contact})
	// UPnP off: nat1 runs miniupnpd, and a UPnP mapping would make the punch moot.
	extra := fmt.Sprintf("upnp = false\nprotocols = %s\nstun_servers = %s\ncontacts = %s", protocols, coturn, rContact)
	p := &punchNodes{n: n, r: r, ha: ha, hb: hb,
		a: startNode(t, n, ha, 40600, extra),
		b: startNode(t, n, hb, 40700, extra),
	}
	for _, d := range []*node{p.a, p.b} {
		d.waitSelf("STUN and the rendezvous", 20*time.Second, func(s admin.Self) bool { return s.NAT.Checked != nil })
		d.waitPeer(r.id, 20*time.Second)
	}
	r.waitPeer(p.a.id, 10*time.Second)
	r.waitPeer(p.b.id, 10*time.Second)
	return p
}

// peer returns d's entry for id, if connected.
func (d *node) peer(id string) (admin.Peer, bool) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peers, err := d.client().Peers(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	i := slices.IndexFunc(peers, func(p admin.Peer) bool { return p.ID == id })
	if i < 0 {
		return admin.Peer{}, false
	}
	return peers[i], true
}

// waitPeer polls peers until id is connected (present) or not (!present).
func (d *node) waitPeerState(id string, present bool, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, ok := d.peer(id); ok == present {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: peer %s present=%v not reached in %v\n%s", d.id[:8], id[:8], present, timeout, d.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *node) waitPeer(id string, timeout time.Duration) { d.waitPeerState(id, true, timeout) }

// punchRound has A connect to B by B's contact and returns the kind and how long
// Connect took, or the error.
func (p *punchNodes) punchRound(t *testing.T) (string, time.Duration, error) {
	t.Helper()
	contact := p.b.self().Contact
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	res, err := p.a.client().Connect(ctx, contact)
	return res.Kind, time.Since(start), err
}

// reset disconnects A from B if they are connected and forgets the routers' state
// of their flows (not of the flows to R), so the next round punches afresh.
func (p *punchNodes) reset(t *testing.T, routerA, routerB testbed.Router) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, ok := p.a.peer(p.b.id); ok {
		events := p.a.newClient()
		defer events.Close()
		lost, err := events.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.a.client().Disconnect(ctx, p.b.id); err != nil {
			t.Fatalf("disconnect: %v", err)
		}
		for ev := range lost { // A may connect again once its PeerLost is out
			if ev.Type == admin.EventLost && ev.ID == p.b.id {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no lost event after Disconnect")
		}
	}
	p.b.waitPeerState(p.a.id, false, 10*time.Second)
	// The old connection's sockets finish closing (FINs, then a reset) through the
	// routers' state: wait for them to be gone before forgetting that state.
	for _, h := range []struct {
		host testbed.Host
		peer netip.Addr
	}{{p.ha, routerB.WAN}, {p.hb, routerA.WAN}} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := p.n.Run(h.host.NS, "ss", "-Htn", "state", "all", "dst", h.peer.String())
			if strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still has sockets to %v:\n%s", h.host.Name, h.peer, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A QUIC connection's last packets (CONNECTION_CLOSE and the answers to it) may
	// still be on their way: one that reaches a router after the flush finds no state
	// and, at a pass-through router, leaves an entry that takes the port the next
	// round needs. So forget the state until none comes back within a quiet period.
	const quiet = 200 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, f := range []struct {
			router testbed.Router
			other  netip.Addr
		}{{routerA, routerB.WAN}, {routerB, routerA.WAN}} {
			// conntrack exits 1 when nothing matched: fine.
			p.n.Run(f.router.NS, "conntrack", "-D", "-d", f.other.String())
			p.n.Run(f.router.NS, "conntrack", "-D", "-s", f.other.String())
		}
		time.Sleep(quiet)
		a, _ := p.n.Run(routerA.NS, "conntrack", "-L", "-s", routerB.WAN.String())
		b, _ := p.n.Run(routerB.NS, "conntrack", "-L", "-s", routerA.WAN.String())
		if !strings.Contains(a+b, "src=") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routers keep getting packets between A and B:\n%s\n%s", a, b)
		}
	}
}

// checkDirect fails unless A's connection to B goes straight to B's router, not
// through the rendezvous.
func (p *punchNodes) checkDirect(t *testing.T, routerB testbed.Router) admin.Peer {
	t.Helper()
	entry, ok := p.a.peer(p.b.id)
	if !ok {
		t.Fatal("A does not list B after Connect")
	}
	addr, err := netip.ParseAddrPort(entry.Addr)
	if err != nil || addr.Addr() != routerB.WAN {
		t.Fatalf("A reaches B at %s, want B's router %v (direct)", entry.Addr, routerB.WAN)
	}
	return entry
}

// punchRounds runs rounds punches from A to B (routerA, routerB in front of them),
// each wanting a direct connection whose kind ends in want, and resets between them;
// it returns how many succeeded, their Connect times, sorted, and what the others did.
func (p *punchNodes) punchRounds(t *testing.T, rounds int, want string, routerA, routerB testbed.Router) (ok int, took []time.Duration, failures []string) {
	t.Helper()
	for round := 1; round <= rounds; round++ {
		kind, d, err := p.punchRound(t)
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("round %d: %v", round, err))
		case !strings.HasSuffix(kind, want):
			failures = append(failures, fmt.Sprintf("round %d: kind %s", round, kind))
		default:
			ok++
			took = append(took, d)
			p.checkDirect(t, routerB)
		}
		p.reset(t, routerA, routerB)
	}
	slices.Sort(took)
	return ok, took, failures
}

// Two hosts behind two different endpoint-independent NATs (MASQUERADE, stateful
// DROP of unsolicited inbound), a rendezvous on the internet side: every round ends
// with a direct punched connection, TCP when both protocols are on, QUIC when only
// QUIC is.
func TestHolePunchBetweenNATs(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	for _, tc := range []struct {
		name, protocols, want string
	}{
		{"tcp+quic", `["tcp", "quic"]`, "tcp-punch"},
		{"quic", `["quic"]`, "quic-punch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPunchNodes(t, n, n.H1A, n.H4A, tc.protocols)
			ok, took, failures := p.punchRounds(t, punchRounds, tc.want, n.NAT1, n.NAT3)
			median := time.Duration(0)
			if len(took) > 0 {
				median = took[len(took)/2]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := p.a.client().Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d/%d rounds punched (%s); Connect median %v; A's stats: %s %+v", tc.name, ok, punchRounds, tc.want,
				median.Round(time.Millisecond), tc.want, st.Ladder[tc.want])
			if st.Ladder[tc.want].Successes != uint64(ok) || st.Ladder[tc.want].Attempts < uint64(ok) {
				t.Errorf("A's stats for %s: %+v, want %d successes", tc.want, st.Ladder[tc.want], ok)
			}
			if ok != punchRounds {
				t.Fatalf("%d/%d rounds punched:\n%s", ok, punchRounds, strings.Join(failures, "\n"))
			}
		})
	}
}

// With 25 ms added on every WAN link (each direction), punches still succeed; the
// time from Connect to connected is reported against the RTT between the two hosts.
func TestHolePunchWithLatency(t *testing.T) {
	const delay = 25 * time.Millisecond
	n := testbed.Up(t, testbed.Options{Netem: delay})
	p := startPunchNodes(t, n, n.H1A, n.H4A, `["tcp", "quic"]`)
	rtt := 4 * delay // h1a → h4a crosses two delayed WAN links, each way
	var took, fromRendezvous []time.Duration
	for round := 1; round <= 5; round++ {
		kind, d, err := p.punchRound(t)
		if err != nil || kind != "tcp-punch" {
			t.Fatalf("round %d with %v per link: kind %q, %v", round, delay, kind, err)
		}
		p.checkDirect(t, n.NAT3)
		took = append(took, d)
		// From A's log: the rendezvous answer, then B connected (kind tcp-punch).
		answered := logTime(t, p.a.proc, `msg="punch: peer answered; starting"`, round)
		connected := logTime(t, p.a.proc, `msg="peer connected" peer=`+p.b.id+` kind=tcp-punch`, round)
		fromRendezvous = append(fromRendezvous, connected.Sub(answered))
		p.reset(t, n.NAT1, n.NAT3)
	}
	slices.Sort(took)
	slices.Sort(fromRendezvous)
	med := fromRendezvous[len(fromRendezvous)/2]
	fromStart := med - rtt/2 // both ends start punching half a round trip after the answer
	t.Logf("with %v per WAN link (RTT %v): from the rendezvous answer to connected %v (median %v = %.1f RTT); from the synchronised start %.1f RTT; whole Connect %v",
		delay, rtt, fromRendezvous, med.Round(time.Millisecond), float64(med)/float64(rtt), float64(fromStart)/float64(rtt), took)
	// From the start: the TCP simultaneous open (1 RTT), TLS 1.3 and the Hello
	// exchange (about 1.5 RTT), and, when A has the larger NodeID (random here), half
	// a round trip more for the smaller side's decision to reach it.
	if fromStart > 7*rtt/2 {
		t.Errorf("median %v from the synchronised start to connected, more than 3.5 RTT", fromStart)
	}
}

// logTime returns the time of the nth line (1-based) of a crust-node's text log that
// contains what, waiting for the node to write it (the admin API may answer Connect
// before the node's log line is out).
func logTime(t *testing.T, proc *testbed.Proc, what string, nth int) time.Time {
	t.Helper()
	nthLine := regexp.MustCompile(fmt.Sprintf(`(?s)(?:%s.*?){%d}`, regexp.QuoteMeta(what), nth))
	if _, err := proc.WaitForMatch(nthLine, 5*time.Second); err != nil {
		t.Fatalf("no %d. log line with %s: %v", nth, what, err)
	}
	log := proc.Output()
	seen := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		if seen++; seen < nth {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		return at
	}
	t.Fatalf("no %d. log line with %s", nth, what)
	return time.Time{}
}

// One side behind the symmetric NAT: whatever is possible happens. With TCP alone
// nothing can (a TCP punch needs the peer to know our port, which the NAT picks at
// random per destination): the error names every step and why, and both stay
// connected to R. With QUIC on too, the ladder ends on the birthday punch.
func TestHolePunchSymmetric(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	t.Run("tcp", func(t *testing.T) {
		p := startPunchNodes(t, n, n.H2A, n.H4A, `["tcp"]`)
		kind, d, err := p.punchRound(t)
		if err == nil {
			t.Fatalf("connected by %s through the symmetric NAT with TCP alone", kind)
		}
		t.Logf("symmetric NAT behind A, TCP: no direct connection after %v: %v", d.Round(time.Millisecond), err)
		for _, step := range []string{"tcp-direct:", "tcp-upnp:", "tcp-punch:", "quic-direct:", "quic-punch:"} {
			if !strings.Contains(err.Error(), step) {
				t.Errorf("the error does not name step %s: %v", step, err)
			}
		}
		p.a.waitPeer(p.r.id, 5*time.Second)
		p.b.waitPeer(p.r.id, 5*time.Second)
	})
	t.Run("tcp+quic", func(t *testing.T) {
		p := startPunchNodes(t, n, n.H2A, n.H4A, `["tcp", "quic"]`)
		kind, d, err := p.punchRound(t)
		if err != nil || kind != "quic-punch" {
			t.Fatalf("kind %q, %v; want quic-punch", kind, err)
		}
		t.Logf("symmetric NAT behind A, TCP and QUIC: connected by %s in %v (after the TCP steps)", kind, d.Round(time.Millisecond))
		p.checkDirect(t, n.NAT3)
	})
}

// The birthday punch: A behind the symmetric NAT (a random port per destination),
// B behind an endpoint-independent one, QUIC only. A keeps 256 mappings toward B
// open, B probes 2,048 random ports of A's router: every round ends in a direct
// quic-punch connection.
func TestHolePunchBirthday(t *testing.T) {
	const rounds = 10
	n := testbed.Up(t, testbed.Options{})
	p := startPunchNodes(t, n, n.H2A, n.H4A, `["quic"]`)
	if nat := p.a.self().NAT.Behavior; nat != "endpoint-dependent" {
		t.Fatalf("A's NAT is %q, want endpoint-dependent", nat)
	}
	ok, took, failures := p.punchRounds(t, rounds, "quic-punch", n.NAT2, n.NAT3)
	t.Logf("birthday punch (symmetric ↔ cone, QUIC): %d/%d rounds; Connect times %v", ok, rounds, took)
	if ok != rounds {
		t.Fatalf("%d/%d:\n%s", ok, rounds, strings.Join(failures, "\n"))
	}
}

// Both ends punch toward each other at once: exactly one connection, one
// connected event on each side.
func TestHolePunchFromBothSides(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	p := startPunchNodes(t, n, n.H1A, n.H4A, `["tcp", "quic"]`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evA, err := p.a.newClient().Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evB, err := p.b.newClient().Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	contactA, contactB := p.a.self().Contact, p.b.self().Contact
	errs := make(chan error, 2)
	ca, cb := p.a.newClient(), p.b.newClient() // Connect holds its connection
	go func() { _, err := ca.Connect(ctx, contactB); errs <- err }()
	go func() { _, err := cb.Connect(ctx, contactA); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("punching from both sides: %v", err)
		}
	}
	// A message each way after both Connects: any duplicate connection has been
	// settled by then, and its event (there must be none) would have come first.
	ctxS, cancelS := context.WithTimeout(ctx, 10*time.Second)
	defer cancelS()
	if err := p.a.client().Send(ctxS, p.b.id, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := p.b.client().Send(ctxS, p.a.id, []byte("b")); err != nil {
		t.Fatal(err)
	}
	count := func(events <-chan admin.Event, peer string) int {
		connected := 0
		for ev := range events {
			switch {
			case ev.Type == admin.EventConnected && ev.ID == peer:
				connected++
			case ev.Type == admin.EventMessage && ev.From == peer:
				return connected
			}
		}
		t.Fatal("event stream ended")
		return 0
	}
	if ca, cb := count(evA, p.b.id), count(evB, p.a.id); ca != 1 || cb != 1 {
		t.Fatalf("connected events A=%d B=%d, want 1 each", ca, cb)
	}
	p.checkDirect(t, n.NAT3)
}

// Behind the firewall without NAT (stateful DROP of unsolicited inbound), a host on
// the internet cannot connect in; after `crust-lan listen-for` opens the firewall
// with a hop-limited SYN it can; a hop limit that reaches the peer draws its reset,
// which the demo reports, and the automatic choice stops short of it. Over IPv6
// (IPV6_UNICAST_HOPS, ip6tables) and IPv4 (IP_TTL, iptables) alike.
func TestFirewallPunch(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	peerPort := 41100
	for _, fam := range []struct {
		name       string
		host, peer netip.Addr
	}{{"IPv6", n.H3A.Addr6, n.Pub.Addr6}, {"IPv4", n.H3A.Addr, n.Pub.Addr}} {
		t.Run(fam.name, func(t *testing.T) { firewallPunch(t, n, fam.host, fam.peer, &peerPort) })
	}
}

// firewallPunch runs the firewall punch cases with h3a at host and pub at peer,
// taking pub's source ports from *peerPort on.
func firewallPunch(t *testing.T, n *testbed.Net, host, peer netip.Addr, peerPort *int) {
	const listenPort = 41000
	listen := netip.AddrPortFrom(host, listenPort).String()
	// connectIn connects from pub's port to the listener; it reports whether the
	// connection was established.
	connectIn := func(port int) bool {
		_, err := n.Run(n.Pub.NS, "socat", "-u", "OPEN:/dev/null",
			fmt.Sprintf("TCP:%s,sourceport=%d,reuseaddr,connect-timeout=2", listen, port))
		return err == nil
	}
	listenFor := func(hops string, port int) *testbed.Proc {
		if err := n.FlushConntrack(n.FW.NS); err != nil {
			t.Fatal(err)
		}
		to := netip.AddrPortFrom(peer, uint16(port)).String()
		return n.Start(t, n.H3A.NS, crustBin(t, "crust-lan"), "listen-for", to, "-listen", listen, "-hops", hops, "-duration", "30s")
	}

	t.Run("NoPunch", func(t *testing.T) {
		*peerPort++
		p := listenFor("0", *peerPort)
		defer p.Kill()
		if err := p.WaitFor("no firewall-opening SYN sent", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if connectIn(*peerPort) {
			t.Fatalf("pub connected in through the firewall without a punch:\n%s", p.Output())
		}
	})
	t.Run("AutoHops", func(t *testing.T) {
		*peerPort++
		p := listenFor("auto", *peerPort)
		defer p.Kill()
		if err := p.WaitFor("with a SYN of hop limit 2", 10*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, p.Output())
		}
		if !strings.Contains(p.Output(), "2 router(s) before") {
			t.Fatalf("the automatic choice did not count two routers (fw, inet):\n%s", p.Output())
		}
		if !connectIn(*peerPort) {
			t.Fatalf("pub could not connect in after the firewall punch:\n%s", p.Output())
		}
		if err := p.WaitFor(fmt.Sprintf("accepted a connection from %v", netip.AddrPortFrom(peer, uint16(*peerPort))), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("TooManyHops", func(t *testing.T) {
		*peerPort++
		p := listenFor("3", *peerPort) // reaches pub itself, where nothing listens on that port
		defer p.Kill()
		if err := p.WaitFor("reached the peer's side: it answered with a reset", 10*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, p.Output())
		}
		in := connectIn(*peerPort)
		t.Logf("after the reset, pub connecting in: established=%v", in)
		if in {
			t.Fatalf("pub connected in although the reset closed the hole:\n%s", p.Output())
		}
	})
}

// A crust punch toward a host behind the firewall without NAT: the host, which STUN
// sees with its own address, opens its firewall with a hop-limited SYN (2 hops: fw,
// inet) and the peer connects in, kind firewall-punch, straight to the host's own
// address. Over IPv4 from behind nat1, and over IPv6 from the public host (the
// testbed's IPv6 runs where no NAT is), with coturn on IPv6 too.
func TestFirewallPunchCrust(t *testing.T) {
	n := testbed.Up(t, testbed.Options{})
	v6 := func(h testbed.Host) testbed.Host { h.Addr = h.Addr6; return h }
	for _, tc := range []struct {
		name   string
		r, a   testbed.Host
		b      testbed.Host
		coturn [2]netip.Addr
	}{
		{"IPv4", n.Pub, n.H1A, n.H3A, n.STUN.Addrs},
		{"IPv6", v6(n.Pub), v6(n.Pub), v6(n.H3A), n.STUN.Addrs6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPunchNodesOn(t, n, tc.r, tc.a, tc.b, `["tcp"]`, tc.coturn)
			if nat := p.b.self().NAT.Behavior; nat != "no-nat" {
				t.Fatalf("B's NAT behaviour %q, want no-nat", nat)
			}
			kind, d, err := p.punchRound(t)
			if err != nil || kind != "firewall-punch" {
				t.Fatalf("A to B behind the firewall: kind %q, %v\nB's log:\n%s", kind, err, p.b.proc.Output())
			}
			t.Logf("connected by %s in %v", kind, d.Round(time.Millisecond))
			entry, _ := p.a.peer(p.b.id)
			if entry.Addr != netip.AddrPortFrom(tc.b.Addr, 40700).String() {
				t.Fatalf("A reaches B at %s, want B's own address (no NAT)", entry.Addr)
			}
			if !strings.Contains(p.b.proc.Output(), `msg="punch: opening our firewall"`) || !strings.Contains(p.b.proc.Output(), "hops=2") {
				t.Fatalf("B did not open its firewall with 2 hops:\n%s", p.b.proc.Output())
			}
		})
	}
}

// Routers treat unsolicited packets differently: drop them (the default above),
// reject them (TCP reset, ICMP port unreachable), or let them reach their own stack
// (plain MASQUERADE, no filter). Between two endpoint-independent NATs a punch must
// get through each.
//
// A TCP punch works when both SYNs leave their own routers before either reaches
// the other's: on the internet the SYNs, sent within a few ms of each other, cross
// in flight. The testbed's routers are microseconds apart, so one SYN always comes
// early, and what follows is a race. A rejecting router answers it with a reset,
// which also closes our router's state for the flow; PunchDial retries at once, and
// that reopens it before the peer's SYN arrives in 40 of 40 rounds on an idle
// machine, but only about half of them with both cores busy. A pass-through router
// hands the early SYN to its own stack, whose reset leaves a conntrack entry (in
// CLOSE for seconds) that takes the peer's port: the router maps the peer's SYN to
// another port, and about 3 rounds in 4 succeed. So TCP is shown with 10 ms on each
// WAN link, a short way on the internet, where the SYNs cross; QUIC, whose punch
// packets are hop-limited first, gets through with no delay at all.
func TestHolePunchInboundPolicies(t *testing.T) {
	const rounds = 10
	const near = 10 * time.Millisecond
	for _, tc := range []struct {
		policy          testbed.Inbound
		protocols, want string
		delay           time.Duration
	}{
		{testbed.InboundReject, `["tcp"]`, "tcp-punch", near},
		{testbed.InboundReject, `["quic"]`, "quic-punch", 0},
		{testbed.InboundReject, `["tcp", "quic"]`, "tcp-punch", near},
		{testbed.InboundOpen, `["quic"]`, "quic-punch", 0},
		{testbed.InboundOpen, `["tcp"]`, "tcp-punch", near},
		{testbed.InboundOpen, `["tcp", "quic"]`, "tcp-punch", near},
	} {
		t.Run(fmt.Sprintf("%s/%s/%v", tc.policy, tc.protocols, tc.delay), func(t *testing.T) {
			n := testbed.Up(t, testbed.Options{Netem: tc.delay, Inbound: map[string]testbed.Inbound{"nat1": tc.policy, "nat3": tc.policy}})
			p := startPunchNodes(t, n, n.H1A, n.H4A, tc.protocols)
			ok, _, failures := p.punchRounds(t, rounds, tc.want, n.NAT1, n.NAT3)
			const learned = "punching back to it"
			t.Logf("inbound %s, %v per WAN link: %d/%d rounds punched (%s); remapped ports punched back to: A %d, B %d", tc.policy, tc.delay, ok, rounds, tc.want,
				strings.Count(p.a.proc.Output(), learned), strings.Count(p.b.proc.Output(), learned))
			if ok != rounds {
				t.Fatalf("%d/%d:\n%s", ok, rounds, strings.Join(failures, "\n"))
			}
		})
	}
}
