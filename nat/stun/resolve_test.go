package stun

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
)

// udpQuery runs Bindings from one shared socket, naming servers by address.
func udpQuery(c *udpClient) func(ctx context.Context, server string) (Result, error) {
	return func(ctx context.Context, server string) (Result, error) {
		ap, err := netip.ParseAddrPort(server)
		if err != nil {
			return Result{}, err
		}
		return c.u.Binding(ctx, ap)
	}
}

// closedUDPPort returns a loopback address where nothing listens.
func closedUDPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	conn.Close()
	return addr
}

func TestResolveAgree(t *testing.T) {
	c := newUDPClient(t)
	var servers []string
	for range 3 {
		servers = append(servers, stuntest.New(t, stuntest.Config{}).UDPAddr().String())
	}

	outcomes, agreed, err := Resolve(t.Context(), servers, udpQuery(c))
	if err != nil {
		t.Fatal(err)
	}
	if agreed != c.LocalAddr() {
		t.Errorf("agreed = %v, want %v", agreed, c.LocalAddr())
	}
	for i, o := range outcomes {
		if o.Server != servers[i] || o.Err != nil || o.Result.Mapped != agreed {
			t.Errorf("outcome %d = %+v", i, o)
		}
	}
}

func TestResolveOneServerDown(t *testing.T) {
	c := newUDPClient(t, WithRTO(10*time.Millisecond), WithMaxTries(3))
	servers := []string{
		stuntest.New(t, stuntest.Config{}).UDPAddr().String(),
		closedUDPPort(t).String(),
		stuntest.New(t, stuntest.Config{}).UDPAddr().String(),
	}

	outcomes, agreed, err := Resolve(t.Context(), servers, udpQuery(c))
	if err != nil {
		t.Fatal(err)
	}
	if agreed != c.LocalAddr() {
		t.Errorf("agreed = %v, want %v", agreed, c.LocalAddr())
	}
	if !errors.Is(outcomes[1].Err, ErrNoResponse) {
		t.Errorf("down server's outcome: %+v, want ErrNoResponse", outcomes[1])
	}
	if outcomes[0].Err != nil || outcomes[2].Err != nil {
		t.Errorf("outcomes = %+v", outcomes)
	}
}

func TestResolveDisagree(t *testing.T) {
	c := newUDPClient(t)
	liar := netip.MustParseAddrPort("127.0.0.1:1")
	servers := []string{
		stuntest.New(t, stuntest.Config{}).UDPAddr().String(),
		stuntest.New(t, stuntest.Config{Mapped: liar}).UDPAddr().String(),
		stuntest.New(t, stuntest.Config{}).UDPAddr().String(),
	}

	outcomes, agreed, err := Resolve(t.Context(), servers, udpQuery(c))
	if !errors.Is(err, ErrDisagree) {
		t.Fatalf("err = %v, want ErrDisagree", err)
	}
	if agreed.IsValid() {
		t.Errorf("agreed = %v, want none", agreed)
	}
	if outcomes[1].Result.Mapped != liar || outcomes[0].Result.Mapped != c.LocalAddr() {
		t.Errorf("outcomes = %+v", outcomes)
	}
	if got := Classify(c.LocalAddr(), outcomes[0].Result, outcomes[1].Result); got != EndpointDependent {
		t.Errorf("Classify = %v, want %v", got, EndpointDependent)
	}
}

func TestResolveNoneAnswer(t *testing.T) {
	c := newUDPClient(t, WithRTO(5*time.Millisecond), WithMaxTries(2))
	servers := []string{closedUDPPort(t).String(), "not an address"}

	_, _, err := Resolve(t.Context(), servers, udpQuery(c))
	if !errors.Is(err, ErrNoResponse) {
		t.Errorf("err = %v, want it to wrap each server's error", err)
	}
	if _, _, err := Resolve(t.Context(), nil, udpQuery(c)); !errors.Is(err, ErrNoServers) {
		t.Errorf("no servers: err = %v, want ErrNoServers", err)
	}
}

func TestResolveOverTCP(t *testing.T) {
	servers := []string{
		stuntest.New(t, stuntest.Config{}).TCPAddr().String(),
		stuntest.New(t, stuntest.Config{}).TCPAddr().String(),
	}
	// Every dial binds the listener's port, as a hole-punching node does.
	ln, err := (&net.ListenConfig{Control: reusePort}).Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	local := ln.Addr().(*net.TCPAddr).AddrPort()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: reusePort}

	query := func(ctx context.Context, server string) (Result, error) {
		return BindingTCP(ctx, d.DialContext, server)
	}
	_, agreed, err := Resolve(t.Context(), servers, query)
	if err != nil {
		t.Fatal(err)
	}
	if agreed != local {
		t.Errorf("agreed = %v, want %v", agreed, local)
	}
}

func TestResolveServer(t *testing.T) {
	// Names go to this fake resolver: no test traffic leaves loopback.
	lookup := func(_ context.Context, network, host string) ([]netip.Addr, error) {
		if host != "stun.example" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		all := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:192.0.2.1")}
		var out []netip.Addr
		for _, a := range all {
			if network == "ip" || network == "ip4" && a.Unmap().Is4() || network == "ip6" && !a.Unmap().Is4() {
				out = append(out, a)
			}
		}
		return out, nil
	}
	tests := []struct {
		server, network string
		want            string // "" for an error
	}{
		{"127.0.0.1:3478", "udp", "127.0.0.1:3478"},
		{"127.0.0.1:3478", "udp4", "127.0.0.1:3478"},
		{"127.0.0.1:3478", "udp6", ""},
		{"127.0.0.1", "udp", "127.0.0.1:3478"},
		{"[::1]:19302", "udp6", "[::1]:19302"},
		{"::1", "udp6", "[::1]:3478"},
		{"[::ffff:127.0.0.1]:5000", "udp4", "127.0.0.1:5000"},
		{"stun.example:3478", "udp", "[2001:db8::1]:3478"},
		{"stun.example:3478", "udp4", "192.0.2.1:3478"},
		{"stun.example", "tcp6", "[2001:db8::1]:3478"},
		{"missing.example:3478", "udp", ""},
		{"127.0.0.1:0", "udp", ""},
		{"127.0.0.1:70000", "udp", ""},
		{"127.0.0.1:stun", "udp", ""},
		{":3478", "udp", ""},
		{"", "udp", ""},
		{"127.0.0.1:3478", "ip", ""},
	}
	for _, tt := range tests {
		got, err := resolveServer(t.Context(), tt.server, tt.network, lookup)
		if tt.want == "" {
			if err == nil {
				t.Errorf("resolveServer(%q, %q) = %v, want an error", tt.server, tt.network, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("resolveServer(%q, %q) = %v, %v; want %s", tt.server, tt.network, got, err, tt.want)
		}
	}

	// The exported function, with a literal: no DNS involved.
	if got, err := ResolveServer(t.Context(), "127.0.0.1:3478", "udp4"); err != nil || got != netip.MustParseAddrPort("127.0.0.1:3478") {
		t.Errorf("ResolveServer = %v, %v", got, err)
	}
}
