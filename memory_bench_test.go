//go:build unix

package crust_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport/identity"
)

// BenchmarkIdleConnections measures what n idle connections cost one node, the hub:
// the growth of its heap and stacks (runtime.MemStats HeapInuse + StackInuse, after
// two GCs) and of its goroutines, divided by n. The project's target is at most
// 24 KiB per connection per end.
//
// Only the hub runs in the benchmark process. Its n peers run in a child process, the
// test binary re-executed with TestIdleChild, so their memory is not counted (in
// several, one after the other, where one would exceed the descriptor limit: 10,000
// crust peers over TCP hold 20,000). The hub is measured when all n are up and again,
// for the figures, two keepalive intervals later. Each case measures once (see
// benchIdle); the figures are B/conn and goroutines/conn. The cases share the process:
// the runtime keeps dead goroutines' descriptors for reuse, and spans a former case
// left partly used, so a case that follows a larger one reads somewhat low. For exact
// figures run one case per process: -bench 'IdleConnections/tcp/1000$'.
//
// -memprofile is written when the benchmarks end, with the connections closed. To see
// where an idle connection's memory goes, set CRUST_IDLE_HEAPPROFILE to a file name:
// the hub's heap profile is written there at the idle measurement (add
// -test.memprofilerate=1 to record every allocation, not a sample).
//
// raw-tls is the floor crust is measured against: a crypto/tls server (TLS 1.3, the
// Ed25519 self-signed certificates and mutual authentication crust uses) that keeps
// one goroutine per connection blocked in conn.Read with a 512-byte buffer after the
// handshake, and nothing else: no framing, no keepalive, no send queue.
func BenchmarkIdleConnections(b *testing.B) {
	for _, proto := range []string{"tcp", "quic", "raw-tls"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", proto, n), func(b *testing.B) { benchIdle(b, proto, n) })
		}
	}
}

const (
	// idleHeapProfileEnv names the file the hub's heap profile is written to when
	// idle.
	idleHeapProfileEnv = "CRUST_IDLE_HEAPPROFILE"
	// idleChildEnv tells TestIdleChild to run the peers: "<proto>,<n>,<hub>", hub
	// being the hub's contact (crust) or address (raw-tls).
	idleChildEnv = "CRUST_IDLE_CHILD"
	// idleKeepalive is the keepalive interval of the hub and the peers: the default,
	// set here because the settle before the last measurement is two of them.
	idleKeepalive = 3 * time.Second
	// idlePeerTimeout is long so that a machine busy with thousands of handshakes does
	// not lose peers whose pings were late; it costs no memory.
	idlePeerTimeout = time.Minute
	// idleDialers is how many peers of a child connect at once: below the hub's
	// MaxPendingHandshakes (64), above which it closes new connections at once.
	idleDialers = 16
	// idleSpareFDs are the descriptors a process needs beside its connections.
	idleSpareFDs = 256
	// idleConnectTimeout bounds the connecting of one child's peers.
	idleConnectTimeout = 5 * time.Minute
	// idleExitTimeout is how long a child has to exit once its stdin is closed.
	idleExitTimeout = 10 * time.Second
)

// idleFDsPerPeer is how many file descriptors one peer holds in a child: a crust node
// over TCP its listener and its connection, over QUIC its UDP socket, a raw TLS client
// its connection.
var idleFDsPerPeer = map[string]int{"tcp": 2, "quic": 1, "raw-tls": 1}

// footprint is what the hub process holds at one moment.
type footprint struct {
	heap, stack uint64 // HeapInuse, StackInuse: bytes
	goroutines  int
}

func (f footprint) mem() uint64 { return f.heap + f.stack }

func measureFootprint() footprint {
	// Twice: the first cycle's finalizers may free more in the second.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return footprint{heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// perConn is the growth of v from before to after, per connection.
func perConn[T uint64 | int](before, after T, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// idleHub is the measured side: it accepts the children's connections and counts
// those up.
type idleHub interface {
	// target is what TestIdleChild dials: a contact's text or a TCP address.
	target() string
	up() *connCount
	close()
}

// benchIdle measures the hub of n idle connections over proto. It measures once per
// benchmark run: a benchmark that calls b.Loop is itself called once, and the empty
// loop after the measurement only satisfies the harness (its ns/op, timing nothing, is
// hidden). The metrics are reported after the loop, whose first call clears them.
func benchIdle(b *testing.B, proto string, n int) {
	ignore := goleak.IgnoreCurrent()
	// Registered first, so it runs after the children are stopped and the hub closed.
	b.Cleanup(func() { goleak.VerifyNone(b, ignore) })
	limit, err := raiseFileLimit()
	if err != nil {
		b.Fatal(err)
	}
	hubFDs := idleSpareFDs
	if proto != "quic" { // QUIC serves every connection from one UDP socket
		hubFDs += n
	}
	perChild := (int(limit) - idleSpareFDs) / idleFDsPerPeer[proto]
	if int(limit) < hubFDs || perChild < 1 {
		b.Skipf("RLIMIT_NOFILE hard limit is %d: the hub needs %d descriptors, each peer in a child %d",
			limit, hubFDs, idleFDsPerPeer[proto])
	}

	hub, err := startIdleHub(proto)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.close)
	before := measureFootprint()

	// The peers connect one child at a time, so that at most idleDialers handshakes
	// reach the hub at once; a child holds as many peers as its descriptors allow.
	// The children stop before the hub closes (cleanups run last first).
	connectStart := time.Now()
	children := 0
	for started := 0; started < n; children++ {
		k := min(perChild, n-started)
		c, err := startIdleChild(proto, k, hub.target())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := c.stop(); err != nil {
				b.Error(err)
			}
		})
		if err := c.waitReady(idleConnectTimeout); err != nil {
			b.Fatal(err)
		}
		started += k
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = hub.up().wait(ctx, n)
	cancel()
	if err != nil {
		b.Fatalf("hub: %v", err)
	}
	if h, ok := hub.(*crustHub); ok {
		if got := len(h.svc.Peers()); got != n {
			b.Fatalf("hub lists %d peers, want %d", got, n)
		}
	}
	connected := time.Since(connectStart)
	atConnect := measureFootprint()
	// Idle means every connection has been through keepalive round trips, and the
	// handshakes' garbage and goroutines are gone: settling for two keepalive
	// intervals is part of what is measured, not a wait for an event.
	time.Sleep(2 * idleKeepalive)
	after := measureFootprint()
	if name := os.Getenv(idleHeapProfileEnv); name != "" {
		if err := writeHeapProfile(name); err != nil {
			b.Error(err)
		}
	}
	if got := hub.up().count(); got != n {
		b.Fatalf("hub: %d of %d peers still connected after the settle", got, n)
	}

	for b.Loop() {
	}
	b.Logf("%d connected in %v from %d child process(es); at connect %.0f B/conn, %.2f goroutines/conn; "+
		"%v later %.0f B/conn (heap %.0f, stacks %.0f), %.2f goroutines/conn; hub before: %d B, %d goroutines",
		n, connected.Round(time.Millisecond), children,
		perConn(before.mem(), atConnect.mem(), n), perConn(before.goroutines, atConnect.goroutines, n),
		2*idleKeepalive, perConn(before.mem(), after.mem(), n),
		perConn(before.heap, after.heap, n), perConn(before.stack, after.stack, n),
		perConn(before.goroutines, after.goroutines, n), before.mem(), before.goroutines)
	b.ReportMetric(perConn(before.mem(), after.mem(), n), "B/conn")
	b.ReportMetric(perConn(before.stack, after.stack, n), "stack-B/conn")
	b.ReportMetric(perConn(before.goroutines, after.goroutines, n), "goroutines/conn")
	b.ReportMetric(0, "ns/op")
}

// writeHeapProfile writes the heap profile as of the last GC to the file name.
func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	return f.Close()
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit (Go does so at start
// too; this makes it explicit) and returns it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", lim.Max, err)
		}
	}
	return lim.Max, nil
}

// connCount counts connections up and lets a goroutine wait for a number.
type connCount struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed and replaced on every change
}

func newConnCount() *connCount { return &connCount{changed: make(chan struct{})} }

func (c *connCount) add(delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += delta
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *connCount) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait returns once exactly want connections are up, or ctx's error.
func (c *connCount) wait(ctx context.Context, want int) error {
	for {
		c.mu.Lock()
		n, changed := c.n, c.changed
		c.mu.Unlock()
		if n == want {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d connections up: %w", n, want, ctx.Err())
		}
	}
}

func startIdleHub(proto string) (idleHub, error) {
	if proto == "raw-tls" {
		return startTLSHub()
	}
	return startCrustHub(proto)
}

// idleConfig is the config of the hub and of the crust peers: one protocol on
// loopback, no beacon, no STUN, an in-memory key.
func idleConfig(proto string) crust.Config {
	return crust.Config{
		ListenAddrs:       []string{"127.0.0.1:0"},
		Protocols:         []string{proto},
		KeepaliveInterval: idleKeepalive,
		PeerTimeout:       idlePeerTimeout,
		ShutdownGrace:     time.Second,
		Log:               slog.New(slog.DiscardHandler),
		// Thousands of connections from one address, 127.0.0.1.
		Limits: crust.Limits{MaxConnections: -1, SourceRate: -1},
	}
}

// crustHub is a crust Service counting its peers from its events.
type crustHub struct {
	svc     *crust.Service
	peers   *connCount
	drained chan struct{}
}

func startCrustHub(proto string) (*crustHub, error) {
	svc, err := crust.New(idleConfig(proto))
	if err != nil {
		return nil, err
	}
	h := &crustHub{svc: svc, peers: newConnCount(), drained: make(chan struct{})}
	go func() {
		defer close(h.drained)
		for ev := range svc.Events() {
			switch ev.(type) {
			case crust.PeerConnected:
				h.peers.add(1)
			case crust.PeerLost:
				h.peers.add(-1)
			}
		}
	}()
	return h, nil
}

func (h *crustHub) target() string { return h.svc.Contact().String() }
func (h *crustHub) up() *connCount { return h.peers }
func (h *crustHub) close()         { h.svc.Close(); <-h.drained }

// tlsHub is the raw TLS baseline: after the handshake, one goroutine per connection
// blocked in Read with a 512-byte buffer. Accepted connections are kept in a map to be
// closed by close, as net/http's Server keeps them.
type tlsHub struct {
	ln    net.Listener
	cfg   *tls.Config
	peers *connCount
	wg    sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startTLSHub() (*tlsHub, error) {
	cfg, err := idleTLSConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &tlsHub{ln: ln, cfg: cfg, peers: newConnCount(), conns: make(map[net.Conn]struct{})}
	h.wg.Go(h.acceptLoop)
	return h, nil
}

func (h *tlsHub) acceptLoop() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		if !h.track(c) {
			c.Close()
			return
		}
		h.wg.Go(func() { h.serve(c) })
	}
}

// track records c so that close can close it, unless the hub is closing.
func (h *tlsHub) track(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *tlsHub) serve(raw net.Conn) {
	defer raw.Close()
	c := tls.Server(raw, h.cfg)
	if err := c.Handshake(); err != nil {
		return
	}
	h.peers.add(1)
	defer h.peers.add(-1)
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func (h *tlsHub) target() string { return h.ln.Addr().String() }
func (h *tlsHub) up() *connCount { return h.peers }

func (h *tlsHub) close() {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.ln.Close()
	h.wg.Wait()
}

// idleTLSConfig is the TLS config of a fresh crust identity: TLS 1.3, an Ed25519
// self-signed certificate, both sides presenting theirs.
func idleTLSConfig() (*tls.Config, error) {
	id, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	return id.TLSConfig(time.Now())
}

// idleChild is a child process running TestIdleChild.
type idleChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *readyWatcher
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startIdleChild starts a child whose n peers connect to the hub at target over proto.
func startIdleChild(proto string, n int, target string) (*idleChild, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%s", idleChildEnv, proto, n, target))
	out := newReadyWatcher()
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the peers' process: %w", err)
	}
	c := &idleChild{cmd: cmd, stdin: stdin, out: out, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitReady waits for the child to print "ready": all its peers are connected.
func (c *idleChild) waitReady(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.out.ready:
		return nil
	case <-c.exited:
		return fmt.Errorf("peers' process exited before its peers were connected (%v):\n%s", c.err, c.out.tail())
	case <-t.C:
		return fmt.Errorf("peers' process not ready after %v:\n%s", timeout, c.out.tail())
	}
}

// stop closes the child's stdin, which tells it to close its peers and exit, and
// waits for it; after idleExitTimeout it is killed.
func (c *idleChild) stop() error {
	c.stdin.Close()
	t := time.NewTimer(idleExitTimeout)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("peers' process (pid %d) did not exit within %v of its stdin closing; killed:\n%s",
			c.cmd.Process.Pid, idleExitTimeout, c.out.tail())
	}
	if c.err != nil {
		return fmt.Errorf("peers' process: %v:\n%s", c.err, c.out.tail())
	}
	return nil
}

// readyWatcher is a child's stdout and stderr: it closes ready on a line "ready" and
// keeps the end of the output for error messages.
type readyWatcher struct {
	ready chan struct{}

	mu      sync.Mutex
	line    []byte // the current line so far
	last    []byte // the output's last few KiB
	isReady bool
}

func newReadyWatcher() *readyWatcher { return &readyWatcher{ready: make(chan struct{})} }

func (w *readyWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = append(w.last, p...)
	if len(w.last) > 8<<10 {
		w.last = w.last[len(w.last)-4<<10:]
	}
	for _, c := range p {
		if c != '\n' {
			w.line = append(w.line, c)
			continue
		}
		if string(w.line) == "ready" && !w.isReady {
			w.isReady = true
			close(w.ready)
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *readyWatcher) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.TrimSpace(w.last))
}

// TestIdleChild is BenchmarkIdleConnections' peers' process; it runs only when
// idleChildEnv is set. It starts the peers, connects them to the hub idleDialers at a
// time, prints "ready" and waits for its stdin to close.
func TestIdleChild(t *testing.T) {
	spec := os.Getenv(idleChildEnv)
	if spec == "" {
		t.Skip("the peers' process of BenchmarkIdleConnections; runs only with " + idleChildEnv + " set")
	}
	proto, n, target, err := parseIdleSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	limit, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if need := n*idleFDsPerPeer[proto] + idleSpareFDs; int(limit) < need {
		t.Fatalf("RLIMIT_NOFILE hard limit is %d, %d peers over %s need %d", limit, n, proto, need)
	}
	var peers idlePeers
	if proto == "raw-tls" {
		peers, err = dialTLSPeers(n, target)
	} else {
		peers, err = startCrustPeers(proto, n, target)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	peers.close()
}

func parseIdleSpec(spec string) (proto string, n int, target string, err error) {
	parts := strings.SplitN(spec, ",", 3)
	if len(parts) != 3 {
		return "", 0, "", fmt.Errorf("%s=%q: want <proto>,<n>,<hub>", idleChildEnv, spec)
	}
	if _, ok := idleFDsPerPeer[parts[0]]; !ok {
		return "", 0, "", fmt.Errorf("%s: protocol %q: want tcp, quic or raw-tls", idleChildEnv, parts[0])
	}
	n, err = strconv.Atoi(parts[1])
	if err != nil || n < 1 {
		return "", 0, "", fmt.Errorf("%s: peer count %q: want a positive number", idleChildEnv, parts[1])
	}
	return parts[0], n, parts[2], nil
}

// idlePeers are a child's peers; close closes them all.
type idlePeers interface{ close() }

// forEachParallel runs f(0) … f(n-1), workers at a time, and returns their errors.
func forEachParallel(n, workers int, f func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// crustPeers are crust nodes, each draining its events.
type crustPeers struct {
	nodes   []*crust.Service
	drained sync.WaitGroup
}

func startCrustPeers(proto string, n int, target string) (*crustPeers, error) {
	hub, err := crust.ParseContact(target)
	if err != nil {
		return nil, err
	}
	p := &crustPeers{nodes: make([]*crust.Service, n)}
	err = forEachParallel(n, idleDialers, func(i int) error {
		svc, err := crust.New(idleConfig(proto))
		if err != nil {
			return fmt.Errorf("starting peer %d: %w", i, err)
		}
		p.nodes[i] = svc
		p.drained.Go(func() {
			for range svc.Events() {
			}
		})
		// The hub may refuse a connection while it is busy with others: try again.
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = svc.Connect(ctx, hub)
			cancel()
			if err == nil || attempt == 3 {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("peer %d connecting to the hub: %w", i, err)
		}
		return nil
	})
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *crustPeers) close() {
	forEachParallel(len(p.nodes), 256, func(i int) error {
		if p.nodes[i] != nil {
			p.nodes[i].Close()
		}
		return nil
	})
	p.drained.Wait()
}

// tlsPeers are raw TLS clients with their handshakes done, not reading.
type tlsPeers []*tls.Conn

func dialTLSPeers(n int, addr string) (tlsPeers, error) {
	cfg, err := idleTLSConfig()
	if err != nil {
		return nil, err
	}
	conns := make(tlsPeers, n)
	err = forEachParallel(n, idleDialers, func(i int) error {
		raw, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			return err
		}
		c := tls.Client(raw, cfg)
		if err := c.Handshake(); err != nil {
			raw.Close()
			return err
		}
		conns[i] = c
		return nil
	})
	if err != nil {
		conns.close()
		return nil, err
	}
	return conns, nil
}

func (p tlsPeers) close() {
	for _, c := range p {
		if c != nil {
			c.Close()
		}
	}
}
