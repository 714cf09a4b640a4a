package admin_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crust-p2p/crust/admin"
)

// TestBadRequests sends what a confused or hostile client might, on one connection:
// each line gets an error answer, and the connection still answers self after.
func TestBadRequests(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	id := n.svc.ID()
	id[0] ^= 1 // a NodeID that is not connected
	other := id.String()
	c := dialRaw(t, n.unix)
	for _, tc := range []struct {
		line, want string
	}{
		{`garbage`, "malformed request"},
		{`{"op":`, "malformed request"},
		{`[1,2]`, "malformed request"},
		{`"self"`, "malformed request"},
		{`{"op":5}`, "malformed request"},
		{`{}`, `missing "op"`},
		{`{"op":"reboot"}`, `unknown op "reboot"`},
		{`{"op":"connect"}`, `needs "contact"`},
		{`{"op":"connect","contact":"nobody@nowhere"}`, "parsing the contact"},
		{`{"op":"connect","contact":"` + n.svc.Contact().String() + `","timeout_ms":-1}`, "timeout_ms"},
		{`{"op":"disconnect"}`, `needs "id"`},
		{`{"op":"disconnect","id":"short"}`, "not a NodeID"},
		{`{"op":"disconnect","id":"` + other + `"}`, "not connected"},
		{`{"op":"send","id":"` + other + `"}`, `needs "text" or "data"`},
		{`{"op":"send","id":"` + other + `","text":"a","data":"YQ=="}`, "not both"},
		{`{"op":"send","id":"` + other + `","data":"!!"}`, "malformed request"},
		{`{"op":"send","id":"` + other + `","text":"hi"}`, "not connected"},
	} {
		a := c.ask(tc.line)
		if a.OK || !strings.Contains(a.Error, tc.want) {
			t.Errorf("%s: answer %+v, want an error containing %q", tc.line, a, tc.want)
		}
	}
	// Blank lines are skipped, CRLF is accepted, and requests pipelined in one write
	// are answered in order.
	if _, err := io.WriteString(c, "\n\r\n{\"op\":\"self\"}\r\n{\"op\":\"nope\"}\n{\"op\":\"peers\"}\n"); err != nil {
		t.Fatal(err)
	}
	var self admin.Self
	if a := c.answer(); !a.OK || json.Unmarshal(a.Result, &self) != nil || self.ID != n.svc.ID().String() {
		t.Errorf("self after bad requests: %+v", a)
	}
	if a := c.answer(); a.OK {
		t.Errorf("pipelined unknown op: %+v, want an error", a)
	}
	if a := c.answer(); !a.OK || string(a.Result) != "[]" {
		t.Errorf("pipelined peers: %+v, want []", a)
	}
}

func TestRequestSizeLimit(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	const max = 1 << 20
	// Exactly the limit is fine.
	prefix := `{"op":"self","pad":"`
	line := prefix + strings.Repeat("a", max-len(prefix)-2) + `"}`
	c := dialRaw(t, n.tcp)
	if a := c.ask(line); !a.OK {
		t.Fatalf("a request of exactly 1 MiB: %+v, want ok", a)
	}
	// One more byte: an error, then the connection is closed.
	if a := c.ask(`{"op":"self"}`); !a.OK {
		t.Fatalf("self after it: %+v", a)
	}
	line = prefix + strings.Repeat("a", max-len(prefix)-1) + `"}`
	for _, addr := range []string{n.tcp, n.unix} {
		c := dialRaw(t, addr)
		if a := c.ask(line); a.OK || !strings.Contains(a.Error, "longer than") {
			t.Errorf("%s: oversized request: %+v, want an error", addr, a)
		}
		if rest, err := io.ReadAll(c.r); err != nil || len(rest) != 0 {
			t.Errorf("%s: after the oversized request read %q, %v; want the connection closed", addr, rest, err)
		}
	}
	if _, err := dial(t, n.unix).Self(testContext(t)); err != nil {
		t.Errorf("Self on a new connection: %v", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	ctx := testContext(t)
	var clients []*admin.Client
	for i := range 32 {
		addr := n.unix
		if i%2 == 1 {
			addr = n.tcp // the limit is shared by the listeners
		}
		c := dial(t, addr)
		if _, err := c.Self(ctx); err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
		clients = append(clients, c)
	}
	_, err := dial(t, n.unix).Self(ctx)
	var ae *admin.Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "too many admin connections") {
		t.Fatalf("33rd client: %v, want an admin.Error saying too many admin connections", err)
	}
	if !strings.Contains(n.logs.String(), "too many connections") {
		t.Errorf("the refusal was not logged")
	}
	// Once a client leaves, its place is free again.
	clients[0].Close()
	pollUntil(t, "a free connection slot", func() bool {
		c, err := admin.Dial(ctx, n.unix)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Self(ctx)
		return err == nil
	})
}

// TestHandlerPanic serves a Server without a service, so every request that uses it
// panics: the panic is answered and logged, and the daemon goes on.
func TestHandlerPanic(t *testing.T) {
	checkLeaks(t)
	logs := &syncBuffer{}
	srv := admin.NewServer(nil, newLogger(t, logs))
	ln, err := admin.Listen("unix://" + filepath.Join(t.TempDir(), "admin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c := dialRaw(t, "unix://"+ln.Addr().String())
	for range 2 {
		if a := c.ask(`{"op":"self"}`); a.OK || !strings.Contains(a.Error, "internal error") {
			t.Errorf("self without a service: %+v, want an internal error", a)
		}
	}
	if a := c.ask(`{"op":"nope"}`); a.OK || !strings.Contains(a.Error, "unknown op") {
		t.Errorf("after the panics: %+v, want the unknown op error", a)
	}
	if !strings.Contains(logs.String(), "panicked") {
		t.Errorf("the panic was not logged")
	}
	srv.Close()
	srv.Close() // idempotent
	if err := <-served; err != nil {
		t.Errorf("Serve: %v, want nil after Close", err)
	}
	// Serve after Close returns at once and closes the listener.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln2); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := ln2.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after Serve on a closed Server: %v, want it closed", err)
	}
}

// TestLogFlood sends many bad requests: the log holds a bounded number of lines.
func TestLogFlood(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	c := dialRaw(t, n.unix)
	for range 200 {
		c.ask(`garbage`)
	}
	if got := strings.Count(n.logs.String(), "malformed request"); got == 0 || got > 50 {
		t.Errorf("%d log lines for 200 malformed requests, want a few", got)
	}
}
