package stun

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
	pion "github.com/pion/stun/v3"
)

// udpClient is a socket owner as the QUIC transport would be: it reads a real UDP
// socket on 127.0.0.1 and feeds every datagram to HandlePacket.
type udpClient struct {
	conn *net.UDPConn
	u    *UDP
	// unclaimed gets the datagrams HandlePacket returned false for.
	unclaimed chan []byte
	wg        sync.WaitGroup
}

func newUDPClient(t *testing.T, opts ...Option) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	c := &udpClient{conn: conn, unclaimed: make(chan []byte, 64)}
	c.u = NewUDP(func(b []byte, to netip.AddrPort) error {
		_, err := conn.WriteToUDPAddrPort(b, to)
		return err
	}, opts...)
	c.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed by Cleanup
			}
			if !c.u.HandlePacket(buf[:n], from) {
				select {
				case c.unclaimed <- append([]byte(nil), buf[:n]...):
				default:
				}
			}
		}
	})
	t.Cleanup(func() {
		conn.Close()
		c.wg.Wait()
		c.u.mu.Lock()
		defer c.u.mu.Unlock()
		if n := len(c.u.pending); n != 0 {
			t.Errorf("%d Bindings still pending after the test", n)
		}
	})
	return c
}

func (c *udpClient) LocalAddr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// fastRTO keeps retransmission tests short.
var fastRTO = WithRTO(20 * time.Millisecond)

func TestUDPBinding(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{})
	c := newUDPClient(t)

	r, err := c.u.Binding(t.Context(), srv.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	want := Result{
		Server: srv.UDPAddr().String(),
		Mapped: c.LocalAddr(),
		Other:  srv.AltAddr(),
		Origin: srv.UDPAddr(),
		RTT:    r.RTT,
	}
	if r != want {
		t.Errorf("Binding = %+v, want %+v", r, want)
	}
	if r.RTT <= 0 || r.RTT > 5*time.Second {
		t.Errorf("RTT = %v, want a small positive duration", r.RTT)
	}
}

func TestUDPRetransmits(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Drop: 2})
	c := newUDPClient(t, fastRTO)

	r, err := c.u.Binding(t.Context(), srv.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapped != c.LocalAddr() {
		t.Errorf("Mapped = %v, want %v", r.Mapped, c.LocalAddr())
	}
	if got := len(srv.Requests()); got < 3 {
		t.Errorf("server saw %d requests, want at least 3 (2 dropped, 1 answered)", got)
	}
}

func TestUDPGivesUpAfterMaxTries(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mode: stuntest.Silent})
	c := newUDPClient(t, WithRTO(5*time.Millisecond), WithMaxTries(3))

	_, err := c.u.Binding(t.Context(), srv.UDPAddr())
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err = %v, want ErrNoResponse", err)
	}
	want := "stun " + srv.UDPAddr().String() + ": no response after 3 tries ("
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
	for range 3 {
		<-srv.Requests() // the server saw all three sends
	}
}

func TestUDPContextDeadline(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mode: stuntest.Silent})
	c := newUDPClient(t)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.u.Binding(ctx, srv.UDPAddr())
	if !errors.Is(err, ErrNoResponse) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrNoResponse and context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), srv.UDPAddr().String()) {
		t.Errorf("err = %q does not name the server", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Binding took %v after a 100ms deadline", d)
	}

	// A context that is already done sends nothing.
	_, err = c.u.Binding(ctx, srv.UDPAddr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Binding with a done context: err = %v", err)
	}
}

func TestUDPIgnoresGarbage(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mode: stuntest.Garbage})
	c := newUDPClient(t, fastRTO)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.u.Binding(ctx, srv.UDPAddr())
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err = %v, want ErrNoResponse: garbage must be ignored", err)
	}
	// The bytes that are not STUN went back to the owner; the malformed STUN with
	// our transaction ID was claimed and dropped.
	got := <-c.unclaimed
	if looksLikeSTUN(got) {
		t.Errorf("HandlePacket left a datagram with our transaction ID to the owner: %x", got[:20])
	}
}

func TestUDPErrorResponse(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mode: stuntest.Error401})
	c := newUDPClient(t)

	_, err := c.u.Binding(t.Context(), srv.UDPAddr())
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 401 || se.Reason != "Unauthorized" {
		t.Fatalf("err = %v, want a *ServerError 401 Unauthorized", err)
	}
	want := "stun " + srv.UDPAddr().String() + ": stun server answered error 401 Unauthorized"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestUDPIgnoresStrangers(t *testing.T) {
	for _, mode := range []stuntest.Mode{stuntest.WrongTxID, stuntest.OtherPort} {
		srv := stuntest.New(t, stuntest.Config{Mode: mode})
		c := newUDPClient(t, fastRTO)

		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		_, err := c.u.Binding(ctx, srv.UDPAddr())
		cancel()
		if !errors.Is(err, ErrNoResponse) {
			t.Errorf("mode %d: err = %v, want ErrNoResponse", mode, err)
		}
		// The stray response was left to the socket's owner.
		if got := <-c.unclaimed; !looksLikeSTUN(got) {
			t.Errorf("mode %d: unclaimed datagram is not the STUN response: %x", mode, got)
		}
	}
}

func TestHandlePacketNotOurs(t *testing.T) {
	u := NewUDP(func([]byte, netip.AddrPort) error { return nil })
	from := netip.MustParseAddrPort("127.0.0.1:3478")
	response, err := pion.Build(pion.BindingSuccess, pion.NewTransactionIDSetter(pion.NewTransactionID()),
		&pion.XORMappedAddress{IP: []byte{127, 0, 0, 1}, Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":               nil,
		"QUIC short header":   {0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
		"no magic cookie":     make([]byte, 40),
		"unknown transaction": response.Raw,
	} {
		if u.HandlePacket(b, from) {
			t.Errorf("%s: HandlePacket = true", name)
		}
	}
}

func TestUDPTooManyPending(t *testing.T) {
	u := NewUDP(func([]byte, netip.AddrPort) error { return nil })
	for i := range maxPending {
		u.pending[[12]byte{byte(i)}] = &pending{}
	}
	_, err := u.Binding(t.Context(), netip.MustParseAddrPort("127.0.0.1:3478"))
	if !errors.Is(err, ErrTooManyPending) {
		t.Errorf("err = %v, want ErrTooManyPending", err)
	}
}

func TestUDPSendError(t *testing.T) {
	boom := errors.New("network is unreachable")
	u := NewUDP(func([]byte, netip.AddrPort) error { return boom })
	_, err := u.Binding(t.Context(), netip.MustParseAddrPort("127.0.0.1:3478"))
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the send error", err)
	}
	if len(u.pending) != 0 {
		t.Errorf("%d Bindings left pending", len(u.pending))
	}
}

func TestUDPBadServer(t *testing.T) {
	u := NewUDP(func([]byte, netip.AddrPort) error { return nil })
	for _, s := range []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("0.0.0.0:3478")} {
		if _, err := u.Binding(t.Context(), s); err == nil {
			t.Errorf("Binding(%v) succeeded", s)
		}
	}
}
