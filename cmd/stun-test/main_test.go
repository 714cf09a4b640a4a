package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	pion "github.com/pion/stun/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stunServer is a minimal STUN server on 127.0.0.1 (UDP and TCP on one port number
// where possible) answering Binding requests with the source address it saw, or
// with lie if set. The real servers (coturn) are tested in make test-nat.
type stunServer struct {
	udp  net.PacketConn
	tcp  net.Listener
	lie  netip.AddrPort
	wg   sync.WaitGroup
	addr string // "127.0.0.1:port" of the UDP socket
	tcpA string
}

func newSTUNServer(t *testing.T, lie netip.AddrPort) *stunServer {
	t.Helper()
	s := &stunServer{lie: lie}
	var err error
	if s.udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if s.tcp, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.addr, s.tcpA = s.udp.LocalAddr().String(), s.tcp.Addr().String()
	s.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := s.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := s.answer(buf[:n], from); out != nil {
				s.udp.WriteTo(out, from)
			}
		}
	})
	s.wg.Go(func() {
		for {
			c, err := s.tcp.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				head := make([]byte, 20)
				if _, err := io.ReadFull(c, head); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint16(head[2:4]))
				if _, err := io.ReadFull(c, body); err != nil {
					return
				}
				if out := s.answer(append(head, body...), c.RemoteAddr()); out != nil {
					c.Write(out)
				}
			})
		}
	})
	t.Cleanup(func() {
		s.udp.Close()
		s.tcp.Close()
		s.wg.Wait()
	})
	return s
}

func (s *stunServer) answer(req []byte, from net.Addr) []byte {
	m := &pion.Message{Raw: append([]byte(nil), req...)}
	if m.Decode() != nil || m.Type != pion.BindingRequest {
		return nil
	}
	seen := netip.MustParseAddrPort(from.String())
	if s.lie.IsValid() {
		seen = s.lie
	}
	resp, err := pion.Build(pion.NewTransactionIDSetter(m.TransactionID), pion.BindingSuccess,
		&pion.XORMappedAddress{IP: seen.Addr().AsSlice(), Port: int(seen.Port())}, pion.Fingerprint)
	if err != nil {
		return nil
	}
	return resp.Raw
}

func runStunTest(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Over UDP and TCP, two servers agree on our address: the local address stun-test
// asked from (no NAT on loopback), with the port it was told to use.
func TestResolvesOurAddress(t *testing.T) {
	a, b := newSTUNServer(t, netip.AddrPort{}), newSTUNServer(t, netip.AddrPort{})
	for _, tc := range []struct {
		proto   string
		servers []string
	}{{"--udp", []string{a.addr, b.addr}}, {"--tcp", []string{a.tcpA, b.tcpA}}} {
		port := freePort(t)
		code, out, errOut := runStunTest(append([]string{tc.proto, "--port", port}, tc.servers...)...)
		if code != 0 || strings.TrimSpace(out) != "127.0.0.1:"+port {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 127.0.0.1:%s", tc.proto, code, out, errOut, port)
		}
		code, out, _ = runStunTest(append([]string{tc.proto, "--port", port, "--print-servers"}, tc.servers...)...)
		want := tc.servers[0] + " 127.0.0.1:" + port + "\n" + tc.servers[1] + " 127.0.0.1:" + port + "\n"
		if code != 0 || out != want {
			t.Fatalf("%s --print-servers: exit %d, stdout %q, want %q", tc.proto, code, out, want)
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
	a := newSTUNServer(t, netip.AddrPort{})
	dead := freePort(t)
	code, out, errOut := runStunTest("--udp", "--timeout", "2s", a.addr, "127.0.0.1:"+dead)
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
	honest := newSTUNServer(t, netip.AddrPort{})
	liar := newSTUNServer(t, netip.MustParseAddrPort("198.0.99.1:4242"))
	code, _, errOut := runStunTest("--udp", honest.addr, liar.addr)
	if code != 1 || !strings.Contains(errOut, "Previously resolved addresses do not match") {
		t.Fatalf("exit %d, stderr %q; want 1 and the mismatch", code, errOut)
	}
	code, out, errOut := runStunTest("--udp", "--no-check", honest.addr, liar.addr)
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
