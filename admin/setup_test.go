package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
)

// checkLeaks registers a goroutine-leak check that runs after every other cleanup of
// the test, so it sees the state after every Server and Service was closed.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// node is a crust.Service on loopback with an admin Server on a unix socket and on
// loopback TCP, and a daemon loop that publishes its events and records them.
type node struct {
	t    *testing.T
	svc  *crust.Service
	srv  *admin.Server
	unix string // admin address of the unix socket
	tcp  string // admin address on loopback TCP
	logs *syncBuffer

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	events  []crust.Event
}

func newLogger(t *testing.T, logs *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNode starts the node, its Server made with opts; everything stops in the
// test's cleanup, the admin Server first, as the daemon does.
func startNode(t *testing.T, opts ...admin.Option) *node {
	t.Helper()
	logs := &syncBuffer{}
	log := newLogger(t, logs)
	svc, err := crust.New(crust.Config{
		ListenAddrs:       []string{"127.0.0.1:0"},
		Protocols:         []string{"tcp"},
		KeepaliveInterval: 200 * time.Millisecond,
		PeerTimeout:       time.Second,
		HandshakeTimeout:  3 * time.Second,
		ShutdownGrace:     time.Second,
		Log:               log,
	})
	if err != nil {
		t.Fatalf("starting the service: %v", err)
	}
	n := &node{t: t, svc: svc, srv: admin.NewServer(svc, log, opts...), logs: logs, changed: make(chan struct{})}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	unixLn, err := admin.Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("admin.Listen on the unix socket: %v", err)
	}
	tcpLn, err := admin.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatalf("admin.Listen on loopback TCP: %v", err)
	}
	n.unix, n.tcp = "unix://"+sock, "tcp://"+tcpLn.Addr().String()
	served := make(chan error, 2)
	for _, ln := range []net.Listener{unixLn, tcpLn} {
		go func() { served <- n.srv.Serve(ln) }()
	}
	daemonDone := make(chan struct{})
	go func() {
		defer close(daemonDone)
		for ev := range svc.Events() {
			n.srv.Publish(ev)
			n.mu.Lock()
			n.events = append(n.events, ev)
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		n.srv.Close()
		for range 2 {
			if err := <-served; err != nil {
				t.Errorf("Serve returned %v after Close, want nil", err)
			}
		}
		svc.Close()
		<-daemonDone
	})
	return n
}

// waitEvent waits until the service delivered an event matching match.
func (n *node) waitEvent(what string, match func(crust.Event) bool) crust.Event {
	n.t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	seen := 0
	for {
		n.mu.Lock()
		evs, ch := n.events[seen:], n.changed
		seen = len(n.events)
		n.mu.Unlock()
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			n.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// dial returns a Client closed at the end of the test.
func dial(t *testing.T, addr string) *admin.Client {
	t.Helper()
	c, err := admin.Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("Dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn speaks the protocol by hand, to send what the Client never would.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	network, target, ok := strings.Cut(addr, "://")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	c, err := net.Dial(network, target)
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

// rawAnswer is an answer line as sent.
type rawAnswer struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// ask writes line and a newline, and reads one answer.
func (c *rawConn) ask(line string) rawAnswer {
	c.t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		c.t.Fatalf("writing %.40q: %v", line, err)
	}
	return c.answer()
}

func (c *rawConn) answer() rawAnswer {
	c.t.Helper()
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	var a rawAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		c.t.Fatalf("answer %q: %v", line, err)
	}
	return a
}

// pollUntil calls cond until it holds, failing after 5 s. For states that raise no
// event; each cond is a real request, so the loop follows the server.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
