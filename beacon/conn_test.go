package beacon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust/transport/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every address a test sends to is on loopback.
var loopbackBroadcast = netip.MustParseAddr("127.255.255.255")

const waitFor = 5 * time.Second

// freePort returns a UDP port that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	return uint16(port)
}

// logCapture is a slog.Handler that passes each record, as text, to a channel.
type logCapture struct{ lines chan string }

func newLogCapture() *logCapture { return &logCapture{lines: make(chan string, 100)} }

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.lines <- b.String()
	return nil
}

// next waits for the next log line.
func (l *logCapture) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-l.lines:
		return s
	case <-time.After(waitFor):
		t.Fatal("no log line")
		return ""
	}
}

type heard struct {
	p    Packet
	from netip.AddrPort
}

// node is a Conn served by a goroutine that the test's cleanup stops and checks.
type node struct {
	*Conn
	heard chan heard
	log   *logCapture
}

// startNode listens with cfg (ID, Port and the loopback broadcast address filled in
// where unset) and serves until the test ends.
func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = []netip.Addr{loopbackBroadcast}
	}
	n := &node{heard: make(chan heard, 100), log: newLogCapture()}
	cfg.Logger = slog.New(n.log)
	c, err := Listen(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Conn = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Serve(ctx, func(p Packet, from netip.AddrPort) { n.heard <- heard{p, from} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve returned %v, want context.Canceled", err)
			}
		case <-time.After(waitFor):
			t.Error("Serve did not return after cancel")
		}
	})
	return n
}

// expect waits for a packet from id.
func (n *node) expect(t *testing.T, id identity.NodeID) heard {
	t.Helper()
	select {
	case h := <-n.heard:
		if h.p.ID != id {
			t.Fatalf("heard %s from %s, want %s", h.p.ID.Short(), h.from, id.Short())
		}
		return h
	case <-time.After(waitFor):
		t.Fatalf("heard nothing from %s", id.Short())
		return heard{}
	}
}

// expectNothing checks that the handler has not been called. Callers first wait for
// a log line about the dropped packet: Serve handles packets one at a time, so any
// delivery of it would already have happened.
func (n *node) expectNothing(t *testing.T) {
	t.Helper()
	select {
	case h := <-n.heard:
		t.Fatalf("handler got %s %s from %s, want it dropped", h.p.Type, h.p.ID.Short(), h.from)
	default:
	}
}

func TestBroadcastReachesEveryNodeOnThePort(t *testing.T) {
	port := freePort(t)
	var receivers []*node
	for i := range 3 {
		receivers = append(receivers, startNode(t, Config{ID: seqID(byte(10 + i)), Port: port}))
	}
	sender := startNode(t, Config{ID: seqID(1), Port: port})

	sent := Packet{Type: Announce, ID: seqID(1), TCPPort: 4000, QUICPort: 4001}
	if err := sender.Send(sent); err != nil {
		t.Fatal(err)
	}
	for i, r := range receivers {
		h := r.expect(t, sent.ID)
		if h.p.Type != Announce || h.p.TCPPort != 4000 || h.p.QUICPort != 4001 {
			t.Errorf("receiver %d heard %+v, want %+v", i, h.p, sent)
		}
		if want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port); h.from != want {
			t.Errorf("receiver %d: source %s, want %s", i, h.from, want)
		}
	}
}

func TestOwnPacketsAreIgnored(t *testing.T) {
	port := freePort(t)
	a := startNode(t, Config{ID: seqID(1), Port: port})
	b := startNode(t, Config{ID: seqID(2), Port: port})

	if err := a.Send(Packet{Type: Query, ID: seqID(1)}); err != nil {
		t.Fatal(err)
	}
	if line := a.log.next(t); !strings.Contains(line, "dropped own packet") {
		t.Fatalf("log %q, want the own packet dropped", line)
	}
	a.expectNothing(t)
	b.expect(t, seqID(1)) // the same broadcast reached the other node

	if err := b.Send(Packet{Type: Announce, ID: seqID(2)}); err != nil {
		t.Fatal(err)
	}
	a.expect(t, seqID(2))
}

func TestNonLocalSourcesAreDropped(t *testing.T) {
	port := freePort(t)
	loopbackIsForeign := func(a netip.Addr) bool { return !a.IsLoopback() }
	strict := startNode(t, Config{ID: seqID(1), Port: port, Local: loopbackIsForeign})
	def := startNode(t, Config{ID: seqID(2), Port: port}) // default Local: loopback is local
	sender := startNode(t, Config{ID: seqID(3), Port: port})

	if err := sender.Send(Packet{Type: Announce, ID: seqID(3)}); err != nil {
		t.Fatal(err)
	}
	if line := strict.log.next(t); !strings.Contains(line, "outside the local subnets") || !strings.Contains(line, "127.0.0.1") {
		t.Fatalf("log %q, want the packet from 127.0.0.1 dropped as not local", line)
	}
	strict.expectNothing(t)
	def.expect(t, seqID(3))
}

func TestGarbageIsDroppedAndServingGoesOn(t *testing.T) {
	port := freePort(t)
	n := startNode(t, Config{ID: seqID(1), Port: port})
	raw, err := net.Dial("udp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	valid := mustEncode(t, Packet{Type: Reply, ID: seqID(7), Contacts: nil}, MaxPacketSize)
	for _, tc := range []struct {
		in     []byte
		reason error
	}{
		{[]byte("hello"), ErrMagic},
		{append([]byte("CRST\x02"), make([]byte, 60)...), ErrVersion},
		{append(valid[:HeaderSize:HeaderSize], make([]byte, MaxPacketSize)...), ErrTooLarge},
		{valid[:HeaderSize], ErrShort},
	} {
		if _, err := raw.Write(tc.in); err != nil {
			t.Fatal(err)
		}
		line := n.log.next(t)
		if !strings.Contains(line, "dropped malformed packet") || !strings.Contains(line, tc.reason.Error()) {
			t.Fatalf("log %q, want a malformed packet dropped for %q", line, tc.reason)
		}
		n.expectNothing(t)
	}
	if _, err := raw.Write(valid); err != nil {
		t.Fatal(err)
	}
	if h := n.expect(t, seqID(7)); h.p.Type != Reply {
		t.Fatalf("heard a %s, want the reply", h.p.Type)
	}
}

func TestServeReturnsWhenContextIsDone(t *testing.T) {
	c, err := Listen(t.Context(), Config{ID: seqID(1), Port: freePort(t), Addrs: []netip.Addr{loopbackBroadcast}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Serve(ctx, func(Packet, netip.AddrPort) { t.Error("handler called") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v, want context.Canceled", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want the first one's nil", err)
	}
	if err := c.Send(Packet{Type: Query, ID: seqID(1)}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after close = %v, want net.ErrClosed", err)
	}
}

func TestCloseStopsServe(t *testing.T) {
	c, err := Listen(t.Context(), Config{ID: seqID(1), Port: freePort(t), Addrs: []netip.Addr{loopbackBroadcast}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(context.Background(), func(Packet, netip.AddrPort) {}) }()
	var wg sync.WaitGroup
	for range 3 { // Close is idempotent and safe to race
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve did not return after Close")
	}
}

func TestListenNeedsIDAndAddrs(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no ID", Config{Addrs: []netip.Addr{loopbackBroadcast}}, "Config.ID"},
		{"no addrs", Config{ID: seqID(1)}, "Config.Addrs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Listen(t.Context(), tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Listen = %v, want it to mention %s", err, tt.want)
			}
		})
	}
}

// fakeInterfaces lists fixed prefixes.
type fakeInterfaces []string

func (f fakeInterfaces) InterfaceAddrs() ([]net.Addr, error) {
	var out []net.Addr
	for _, s := range f {
		ip, ipn, err := net.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		ipn.IP = ip
		out = append(out, ipn)
	}
	return out, nil
}

func TestDirectedBroadcasts(t *testing.T) {
	tests := []struct {
		name string
		ifs  fakeInterfaces
		want []string
	}{
		{"none", nil, nil},
		{"loopback", fakeInterfaces{"127.0.0.1/8", "::1/128"}, []string{"127.255.255.255"}},
		{"home LAN", fakeInterfaces{"192.168.1.7/24"}, []string{"192.168.1.255"}},
		{"odd prefix", fakeInterfaces{"10.1.2.3/20"}, []string{"10.1.15.255"}},
		{"/30", fakeInterfaces{"198.51.100.5/30"}, []string{"198.51.100.7"}},
		{"point to point skipped", fakeInterfaces{"198.51.100.4/31", "198.51.100.9/32"}, nil},
		{"IPv6 skipped", fakeInterfaces{"fe80::1/64", "2001:db8::1/64"}, nil},
		{"duplicates once", fakeInterfaces{"192.168.1.7/24", "192.168.1.8/24", "10.0.0.1/8"}, []string{"192.168.1.255", "10.255.255.255"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DirectedBroadcasts(tt.ifs)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(addrs(tt.want)) {
				t.Fatalf("DirectedBroadcasts = %v, want %v", got, tt.want)
			}
		})
	}
}

func addrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestLocalSubnets(t *testing.T) {
	local, err := LocalSubnets(fakeInterfaces{"192.168.1.7/24", "2001:db8:1::7/64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"192.168.1.200", true},
		{"::ffff:192.168.1.200", true},
		{"192.168.2.1", false},
		{"8.8.8.8", false},
		{"127.0.0.1", true}, // loopback always
		{"127.3.4.5", true},
		{"::1", true},
		{"fe80::1234", true}, // link-local is on-link by definition
		{"2001:db8:1::99", true},
		{"2001:db8:2::1", false},
	} {
		if got := local(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("local(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestLANAddrs(t *testing.T) {
	il := fakeInterfaces{"192.168.1.7/24", "10.1.2.3/16", "fe80::1/64"}
	got, err := LANAddrs(il)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"255.255.255.255", "192.168.1.255", "10.1.255.255", "ff02::5483"}
	if len(got) != len(want) {
		t.Fatalf("LANAddrs = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("LANAddrs = %v, want %v", got, want)
		}
	}
}
