package crust_test

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/beacon"
)

// runBeaconHelper runs a node whose only way to find peers is the LAN beacon (to the
// broadcast address in CRUST_TEST_BEACON), prints "id <id>" and then "connected <id>"
// for every peer, and serves until killed. The namespace test runs it inside a
// network namespace with `ip netns exec`.
func runBeaconHelper() {
	var addrs []netip.Addr
	if b := os.Getenv("CRUST_TEST_BEACON"); b == "lan" {
		// The real-world default: inside the test's namespace, its interfaces are
		// the namespace's own.
		var err error
		if addrs, err = beacon.LANAddrs(nil); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	} else {
		bcast, err := netip.ParseAddr(b)
		if err != nil {
			os.Exit(2)
		}
		addrs = []netip.Addr{bcast}
	}
	svc, err := crust.New(crust.Config{
		ListenAddrs: []string{os.Getenv("CRUST_TEST_LISTEN")},
		BeaconAddrs: addrs,
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("id", svc.ID())
	for ev := range svc.Events() {
		if pc, ok := ev.(crust.PeerConnected); ok {
			fmt.Println("connected", pc.ID)
		}
	}
}

// netns runs ip with args, failing the test with its output on error.
func netns(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Real broadcast and multicast on real (virtual) Ethernet: three hosts on one bridged
// LAN find each other by the beacon alone and connect; a host on a second LAN hears
// nothing and connects to no one. Over IPv4 the beacon is the LAN's directed
// broadcast; over IPv6 it is the link-local multicast group, and the nodes dial each
// other's link-local addresses. Needs root for network namespaces; everything it
// creates it removes, and no packet leaves its namespaces.
func TestBeaconInNamespaces(t *testing.T) {
	t.Run("IPv4 broadcast", func(t *testing.T) { beaconInNamespaces(t, false) })
	t.Run("IPv6 multicast", func(t *testing.T) { beaconInNamespaces(t, true) })
}

func beaconInNamespaces(t *testing.T, v6 bool) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (run make test as root, as CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	prefix := fmt.Sprintf("crb%d", os.Getpid()%100000)
	if v6 {
		prefix += "v6"
	}
	type host struct {
		ns, addr, bcast string
		lan             int
	}
	hosts := []host{
		{prefix + "h1", "10.77.1.1", "10.77.1.255", 1},
		{prefix + "h2", "10.77.1.2", "10.77.1.255", 1},
		{prefix + "h3", "10.77.1.3", "10.77.1.255", 1},
		{prefix + "h4", "10.77.2.4", "10.77.2.255", 2},
	}
	switches := []string{prefix + "sw1", prefix + "sw2"}
	var created []string
	t.Cleanup(func() {
		for _, ns := range created {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, sw := range switches {
		netns(t, "netns", "add", sw)
		created = append(created, sw)
		netns(t, "-n", sw, "link", "add", "br0", "type", "bridge")
		netns(t, "-n", sw, "link", "set", "br0", "up")
	}
	for i, h := range hosts {
		netns(t, "netns", "add", h.ns)
		created = append(created, h.ns)
		if v6 {
			// Link-local addresses usable at once, without duplicate detection.
			for _, k := range []string{"all", "default"} {
				netns(t, "netns", "exec", h.ns, "sysctl", "-q", "-w", "net.ipv6.conf."+k+".accept_dad=0")
			}
		}
		port := fmt.Sprintf("p%d", i)
		netns(t, "-n", h.ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", switches[h.lan-1])
		netns(t, "-n", switches[h.lan-1], "link", "set", port, "master", "br0", "up")
		netns(t, "-n", h.ns, "addr", "add", h.addr+"/24", "brd", h.bcast, "dev", "eth0")
		netns(t, "-n", h.ns, "link", "set", "eth0", "up")
		netns(t, "-n", h.ns, "link", "set", "lo", "up")
	}

	type running struct {
		id        string
		mu        sync.Mutex
		connected map[string]bool
		changed   chan struct{}
	}
	nodes := make([]*running, len(hosts))
	for i, h := range hosts {
		cmd := exec.Command("ip", "netns", "exec", h.ns, os.Args[0], "-test.run=^$")
		// IPv4: the daemon's real-world default (255.255.255.255, the directed
		// broadcast, the IPv6 group), which is safe here since the host's interfaces
		// are the namespace's.
		beaconAddr, listen := "lan", h.addr+":0"
		if v6 {
			beaconAddr, listen = beacon.DefaultGroup.String(), "[::]:0"
		}
		cmd.Env = append(os.Environ(), helperEnv+"=beacon", "CRUST_TEST_BEACON="+beaconAddr, "CRUST_TEST_LISTEN="+listen)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		r := &running{connected: map[string]bool{}, changed: make(chan struct{}, 100)}
		nodes[i] = r
		sc := bufio.NewScanner(out)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "id ") {
			t.Fatalf("%s: helper said %q", h.ns, sc.Text())
		}
		r.id = strings.TrimPrefix(sc.Text(), "id ")
		go func() {
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "connected "); ok {
					r.mu.Lock()
					r.connected[id] = true
					r.mu.Unlock()
					r.changed <- struct{}{}
				}
			}
		}()
	}
	count := func(r *running) int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.connected)
	}
	deadline := time.After(15 * time.Second)
	for i := range 3 {
		for count(nodes[i]) < 2 {
			select {
			case <-nodes[i].changed:
			case <-deadline:
				t.Fatalf("%s connected to %d of the 2 hosts on its LAN", hosts[i].ns, count(nodes[i]))
			}
		}
	}
	for i := range 3 {
		for j := range 3 {
			if i != j && !nodes[i].connected[nodes[j].id] {
				t.Errorf("%s did not connect to %s", hosts[i].ns, hosts[j].ns)
			}
		}
	}
	// The second LAN heard none of it. Its own query went out when it started, as
	// did everyone's, so a wrong delivery would have shown by now; give it one more
	// second of announces-free silence to be sure.
	select {
	case <-nodes[3].changed:
		t.Errorf("the host on the second LAN connected to %v", nodes[3].connected)
	case <-time.After(time.Second):
	}
}
