// Package testbed builds a small internet of Linux network namespaces with real NAT
// routers, real STUN servers and a real UPnP gateway, for tests that run crust's
// binaries (or any command) behind them. It needs root and the Debian packages that
// `make test-nat` installs; Up skips the test unless CRUST_TESTBED=1 is set.
//
// The topology, built by testbed.sh (embedded here, also usable from a shell):
//
//	P-stun  198.0.10.10, 198.0.10.11: coturn on 3478/3479 (UDP, TCP),
//	        stund (RFC 3489) on 3480/3481 (UDP)
//	P-pub   198.0.20.10: a public host
//	P-inet  the internet: routes between the sites, one /24 link per site
//	P-nat1  WAN 198.0.1.2, LAN 192.168.1.0/24: endpoint-independent, port-preserving
//	        MASQUERADE and miniupnpd (UPnP IGD on :2189, NAT-PMP/PCP)
//	        hosts P-h1a 192.168.1.10, P-h1b 192.168.1.11
//	P-nat2  WAN 198.0.2.2, LAN 192.168.2.0/24: MASQUERADE --random-fully (symmetric)
//	        host P-h2a 192.168.2.10
//	P-fw    WAN 198.0.3.2, LAN 198.0.30.0/24: stateful firewall, routable LAN, no NAT
//	        host P-h3a 198.0.30.10
//	P-nat3  WAN 198.0.4.2, LAN 192.168.3.0/24: endpoint-independent, port-preserving
//	        MASQUERADE like nat1, no miniupnpd: the far end of a hole punch from h1a
//	        host P-h4a 192.168.3.10
//
// Every router drops unsolicited inbound packets unless Options.Inbound says to
// reject them or to let them through.
//
// Options.Netem delays both directions of every router's WAN link. Where the kernel
// has a netem qdisc, tc netem does it; where it has none (CONFIG_NET_SCH_NETEM unset,
// as on the project's machines), the internet namespace sends every packet crossing a
// WAN link to an NFQUEUE queue, and Up serves that queue from the test process,
// accepting each packet Netem after it arrived (Net.NetemMethod says which). Nothing is linked to the root namespace, so no
// packet leaves the testbed; Up registers a cleanup that kills every process inside
// the namespaces and deletes them.
//
// A test runs programs inside the namespaces, for instance its own test binary
// (os.Args[0] with -test.run selecting a helper) to put crust code behind a NAT:
//
//	n := testbed.Up(t, testbed.Options{})
//	node := n.Start(t, n.H1A.NS, os.Args[0], "-test.run=^TestHelperNode$")
//	if err := node.WaitFor("listening", 5*time.Second); err != nil {
//		t.Fatal(err)
//	}
//	out, err := n.Run(n.Pub.NS, "socat", "-u", "TCP:198.0.1.2:7000,connect-timeout=3", "STDOUT")
//
// A package with such tests goes into NATPKGS in the Makefile, so that
// `make test-nat` runs it with CRUST_TESTBED=1.
package testbed
