package main

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The STUN servers here are stuntest's, on 127.0.0.1, answering with the source
// address they saw unless told to lie. The real servers (coturn) are tested in
// make test-nat.

func runStunTest(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Over UDP and TCP, two servers agree on our address: the local address stun-test
// asked from (no NAT on loopback), with the port it was told to use.
func TestResolvesOurAddress(t *testing.T) {
	a, b := stuntest.New(t, stuntest.Config{}), stuntest.New(t, stuntest.Config{})
	for _, tc := range []struct {
		proto   string
		servers []string
	}{
		{"--udp", []string{a.UDPAddr().String(), b.UDPAddr().String()}},
		{"--tcp", []string{a.TCPAddr().String(), b.TCPAddr().String()}},
	} {
		port := freePort(t)
		code, out, errOut := runStunTest(append([]string{tc.proto, "--port", port}, tc.servers...)...)
		if code != 0 || strings.TrimSpace(out) != "127.0.0.1:"+port {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 127.0.0.1:%s", tc.proto, code, out, errOut, port)
		}
		// A new port: over TCP the connections from the first run wait out TIME_WAIT
		// on our side (we closed first), and the same 4-tuples cannot connect again.
		port = freePort(t)
		code, out, errOut = runStunTest(append([]string{tc.proto, "--port", port, "--print-servers"}, tc.servers...)...)
		want := tc.servers[0] + " 127.0.0.1:" + port + "\n" + tc.servers[1] + " 127.0.0.1:" + port + "\n"
		if code != 0 || out != want {
			t.Fatalf("%s --print-servers: exit %d, stdout %q, stderr %q; want %q", tc.proto, code, out, errOut, want)
		}
	}
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1 just now.
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenPacket("udp4", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			_, p, _ := net.SplitHostPort(l.Addr().String())
			return p
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// A dead server prints the ERROR line and exits 1; the live one still answers.
func TestDeadServer(t *testing.T) {
	a := stuntest.New(t, stuntest.Config{})
	dead := freePort(t)
	code, out, errOut := runStunTest("--udp", "--timeout", "2s", a.UDPAddr().String(), "127.0.0.1:"+dead)
	if code != 1 || !strings.Contains(errOut, "ERROR While resolving {server=127.0.0.1:"+dead+"}: ") {
		t.Fatalf("exit %d, stderr %q; want 1 and the ERROR line", code, errOut)
	}
	if !strings.HasPrefix(out, "127.0.0.1:") {
		t.Fatalf("stdout %q, want the address the live server saw", out)
	}
	code, _, errOut = runStunTest("--tcp", "127.0.0.1:"+dead)
	if code != 1 || !strings.Contains(errOut, "ERROR While resolving {server=127.0.0.1:"+dead+"}: ") {
		t.Fatalf("tcp: exit %d, stderr %q; want 1 and the ERROR line", code, errOut)
	}
}

// Servers that disagree fail the check, unless --no-check.
func TestDisagreement(t *testing.T) {
	honest := stuntest.New(t, stuntest.Config{})
	liar := stuntest.New(t, stuntest.Config{Mapped: netip.MustParseAddrPort("198.0.99.1:4242")})
	code, _, errOut := runStunTest("--udp", honest.UDPAddr().String(), liar.UDPAddr().String())
	if code != 1 || !strings.Contains(errOut, "Previously resolved addresses do not match") {
		t.Fatalf("exit %d, stderr %q; want 1 and the mismatch", code, errOut)
	}
	code, out, errOut := runStunTest("--udp", "--no-check", honest.UDPAddr().String(), liar.UDPAddr().String())
	if code != 0 || !strings.HasPrefix(out, "127.0.0.1:") || errOut != "" {
		t.Fatalf("--no-check: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Usage errors exit 2; --default with an empty server list says why.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"127.0.0.1:3478"}, {"--udp", "--tcp", "x:1"}, {"--udp"}, {"--udp", "--default"}} {
		code, _, errOut := runStunTest(args...)
		if code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a reason", args, code, errOut)
		}
	}
	_, _, errOut := runStunTest("--udp", "--default")
	if !strings.Contains(errOut, "stun_servers is empty") {
		t.Errorf("--default with no servers: %q", errOut)
	}
}
