package stuntest

import (
	"net"
	"net/netip"
	"testing"
	"time"

	pion "github.com/pion/stun/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reply is what a Binding response said, and where it came from.
type reply struct {
	from, mapped, other, origin netip.AddrPort
}

// parse decodes a Binding success response to transaction id.
func parse(t *testing.T, b []byte, id [12]byte) reply {
	t.Helper()
	m := new(pion.Message)
	if err := pion.Decode(b, m); err != nil {
		t.Fatalf("decoding the response: %v", err)
	}
	if m.Type != pion.BindingSuccess || m.TransactionID != id {
		t.Fatalf("response %v for transaction %x, want a Binding success for %x", m.Type, m.TransactionID, id)
	}
	if err := pion.Fingerprint.Check(m); err != nil {
		t.Errorf("fingerprint: %v", err)
	}
	var mapped pion.XORMappedAddress
	var other pion.OtherAddress
	var origin pion.ResponseOrigin
	for _, g := range []pion.Getter{&mapped, &other, &origin} {
		if err := g.GetFrom(m); err != nil {
			t.Fatalf("%T: %v", g, err)
		}
	}
	ap := func(ip net.IP, port int) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		return netip.AddrPortFrom(a.Unmap(), uint16(port))
	}
	return reply{mapped: ap(mapped.IP, mapped.Port), other: ap(other.IP, other.Port), origin: ap(origin.IP, origin.Port)}
}

func request(t *testing.T) ([]byte, [12]byte) {
	t.Helper()
	m, err := pion.Build(pion.TransactionID, pion.BindingRequest)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw, m.TransactionID
}

// bindingUDP asks to from conn, once, and waits a second for the answer.
func bindingUDP(t *testing.T, conn *net.UDPConn, to netip.AddrPort) reply {
	t.Helper()
	req, id := request(t)
	if _, err := conn.WriteToUDPAddrPort(req, to); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer from %v: %v", to, err)
	}
	r := parse(t, buf[:n], id)
	r.from = from
	return r
}

// bindingTCP asks to over a new TCP connection.
func bindingTCP(t *testing.T, to netip.AddrPort) (r reply, local netip.AddrPort) {
	t.Helper()
	c, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	req, id := request(t)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	resp, err := readMessage(c)
	if err != nil {
		t.Fatalf("no answer from %v: %v", to, err)
	}
	local = c.LocalAddr().(*net.TCPAddr).AddrPort()
	return parse(t, resp, id), netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
}

// The main and the alternate address both answer over UDP, each naming the other,
// with the source address they saw unless told to lie.
func TestUDPMainAndAlternate(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:1111")
	b := netip.MustParseAddrPort("192.0.2.2:2222")
	tests := []struct {
		name              string
		cfg               Config
		wantMain, wantAlt netip.AddrPort // zero: the client's own address
	}{
		{"honest", Config{}, netip.AddrPort{}, netip.AddrPort{}},
		{"Mapped", Config{Mapped: a}, a, a},
		{"AltMapped", Config{AltMapped: b}, netip.AddrPort{}, b},
		{"endpoint-dependent", Config{Mapped: a, AltMapped: b}, a, b},
		{"other loopback address", Config{Addr: "127.0.0.2"}, netip.AddrPort{}, netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, tt.cfg)
			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
			or := func(want netip.AddrPort) netip.AddrPort {
				if want.IsValid() {
					return want
				}
				return self
			}

			wantIP := "127.0.0.1"
			if tt.cfg.Addr != "" {
				wantIP = tt.cfg.Addr
			}
			if got := s.UDPAddr().Addr().String(); got != wantIP {
				t.Errorf("UDPAddr = %v, want it on %s", s.UDPAddr(), wantIP)
			}
			if s.UDPAddr() == s.AltAddr() || s.UDPAddr().Addr() != s.AltAddr().Addr() {
				t.Errorf("UDPAddr %v and AltAddr %v: want two ports on one address", s.UDPAddr(), s.AltAddr())
			}
			main := bindingUDP(t, conn, s.UDPAddr())
			if want := (reply{from: s.UDPAddr(), mapped: or(tt.wantMain), other: s.AltAddr(), origin: s.UDPAddr()}); main != want {
				t.Errorf("main answered %+v, want %+v", main, want)
			}
			alt := bindingUDP(t, conn, main.other)
			if want := (reply{from: s.AltAddr(), mapped: or(tt.wantAlt), other: s.UDPAddr(), origin: s.AltAddr()}); alt != want {
				t.Errorf("alternate answered %+v, want %+v", alt, want)
			}
			for range 2 {
				if got := <-s.Requests(); got != self {
					t.Errorf("Requests gave %v, want %v", got, self)
				}
			}
		})
	}
}

// Over TCP too, at the main port and at the alternate's port number.
func TestTCPMainAndAlternate(t *testing.T) {
	b := netip.MustParseAddrPort("192.0.2.2:2222")
	s := New(t, Config{AltMapped: b})
	main, local := bindingTCP(t, s.TCPAddr())
	if want := (reply{mapped: local, other: s.AltAddr(), origin: s.TCPAddr()}); main != want {
		t.Errorf("main answered %+v, want %+v", main, want)
	}
	if !s.AltTCPAddr().IsValid() {
		t.Skipf("the alternate's port %d was taken for TCP", s.AltAddr().Port())
	}
	if s.AltTCPAddr() != s.AltAddr() {
		t.Errorf("AltTCPAddr = %v, want AltAddr %v", s.AltTCPAddr(), s.AltAddr())
	}
	alt, _ := bindingTCP(t, s.AltTCPAddr())
	if want := (reply{mapped: b, other: s.TCPAddr(), origin: s.AltAddr()}); alt != want {
		t.Errorf("alternate answered %+v, want %+v", alt, want)
	}
}

// Drop counts the requests at every address; Requests reports the dropped ones.
func TestDrop(t *testing.T) {
	s := New(t, Config{Drop: 2})
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, to := range []netip.AddrPort{s.UDPAddr(), s.AltAddr()} {
		req, _ := request(t)
		if _, err := conn.WriteToUDPAddrPort(req, to); err != nil {
			t.Fatal(err)
		}
		<-s.Requests()
	}
	bindingUDP(t, conn, s.UDPAddr()) // the third is answered
}
