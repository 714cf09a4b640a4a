package nat_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/nat"
	"github.com/crust-p2p/crust/nat/stun"
	"github.com/crust-p2p/crust/nat/stun/stuntest"
	"github.com/crust-p2p/crust/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// udpProber is a Prober over a UDP socket of its own on 127.0.0.1.
func udpProber(t *testing.T, servers ...string) (*nat.Prober, netip.AddrPort) {
	t.Helper()
	u, local, closeUDP, err := stun.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeUDP)
	return &nat.Prober{Servers: servers, UDP: u, UDPPort: local.Port()}, local
}

// tcpProber is a Prober dialling from the port of a TCP listener on 127.0.0.1.
func tcpProber(t *testing.T, servers ...string) (*nat.Prober, netip.AddrPort) {
	t.Helper()
	ln, err := transport.OSNet{}.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	local := transport.AddrPortOf(ln.Addr())
	dial := func(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
		return transport.OSNet{}.DialFrom(ctx, "tcp4", local.String(), raddr.String())
	}
	return &nat.Prober{Servers: servers, DialTCP: dial, TCPPort: local.Port()}, local
}

func check(t *testing.T, p *nat.Prober) nat.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Check(ctx)
}

// One server with an alternate address is enough to classify: on loopback nothing
// translates, so both see our socket, which is ours (no NAT) when the prober knows
// the host's addresses, and one consistent mapping when it does not.
func TestProberClassifiesWithOneServer(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{})
	p, local := udpProber(t, srv.UDPAddr().String())
	r := check(t, p)
	if r.UDP.Mapped != local || r.UDP.Behavior != stun.EndpointIndependent || len(r.UDP.Results) != 2 || len(r.UDP.Errors) != 0 {
		t.Fatalf("UDP mapping %+v, want %v seen by the server and its alternate, endpoint-independent", r.UDP, local)
	}
	p.LocalAddrs = func() []netip.Addr { return []netip.Addr{local.Addr()} }
	if r := check(t, p); r.UDP.Behavior != stun.NoNAT || r.Behavior() != stun.NoNAT {
		t.Fatalf("behaviour %q with our own address seen, want no-nat", r.UDP.Behavior)
	}
}

// Different mappings at the server's two addresses mean an endpoint-dependent NAT:
// no single address is reported; the hint is the highest port seen.
func TestProberEndpointDependent(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mapped: netip.MustParseAddrPort("198.0.1.1:40000"), AltMapped: netip.MustParseAddrPort("198.0.1.1:40001")})
	p, _ := udpProber(t, srv.UDPAddr().String())
	r := check(t, p)
	if r.UDP.Behavior != stun.EndpointDependent || r.UDP.Mapped.IsValid() {
		t.Fatalf("UDP mapping %+v, want endpoint-dependent with no mapped address", r.UDP)
	}
	if h := r.UDP.Hint(); h != netip.MustParseAddrPort("198.0.1.1:40001") {
		t.Fatalf("hint %v, want the newest mapping 198.0.1.1:40001", h)
	}
	if h := r.TCP.Hint(); h.IsValid() {
		t.Fatalf("TCP hint %v with no TCP probe, want none", h)
	}
}

// Over TCP the mapping is the listen port's, and asking the same server again at
// once from that port works (no TIME_WAIT left behind).
func TestProberTCPFromListenPort(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{})
	p, local := tcpProber(t, srv.TCPAddr().String())
	for i := range 3 {
		r := check(t, p)
		if r.TCP.Mapped != local || len(r.TCP.Errors) != 0 {
			t.Fatalf("check %d: TCP mapping %+v, want %v", i, r.TCP, local)
		}
	}
}

// A dead server is an error line naming it; the others still answer.
func TestProberDeadServer(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{})
	dead := stuntest.New(t, stuntest.Config{Mode: stuntest.Silent})
	p, local := udpProber(t, srv.UDPAddr().String(), dead.UDPAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r := p.Check(ctx)
	if r.UDP.Mapped != local || len(r.UDP.Errors) != 1 || !strings.Contains(r.UDP.Errors[0], dead.UDPAddr().String()) {
		t.Fatalf("UDP mapping %+v, want %v and one error naming %v", r.UDP, local, dead.UDPAddr())
	}
}
