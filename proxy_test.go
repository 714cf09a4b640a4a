package crust_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport"
)

// tcpProxy forwards TCP connections from a port on 127.0.0.1 to a target, and lets a
// test break the network in between: blackhole, mute, halfOpen and cut. Options make
// the path slow (withSetup, withReturnDelay).
type tcpProxy struct {
	ln    net.Listener
	setup time.Duration // waited after accepting a connection, before dialling the target
	delay time.Duration // how late the bytes from the target reach the client
	wg    sync.WaitGroup
	mu    sync.Mutex
	holed bool         // blackhole was called: connections to come are muted too
	pairs []*proxyPair // the connections through the proxy since the last cut
}

// proxyPair is one connection through the proxy: the client's end and the target's.
type proxyPair struct {
	client, server net.Conn
	dead           atomic.Bool // muted: nothing passes, not even a FIN
}

type proxyOption func(*tcpProxy)

// withSetup makes the proxy wait d after accepting each connection before it dials
// the target. Connections are set up one at a time.
func withSetup(d time.Duration) proxyOption { return func(p *tcpProxy) { p.setup = d } }

// withReturnDelay makes the bytes from the target reach the client d late.
func withReturnDelay(d time.Duration) proxyOption { return func(p *tcpProxy) { p.delay = d } }

func newProxy(t *testing.T, target string, opts ...proxyOption) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	for _, o := range opts {
		o(p)
	}
	p.wg.Add(1)
	go p.serve(target)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, pr := range p.pairs {
			pr.client.Close()
			pr.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) serve(target string) {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		time.Sleep(p.setup)
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		pr := &proxyPair{client: in, server: out}
		p.mu.Lock()
		pr.dead.Store(p.holed)
		p.pairs = append(p.pairs, pr)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, in, out, 0)
		go p.pipe(pr, out, in, p.delay)
	}
}

// pipe copies what one end of pr sends to the other, d late, and passes its close on,
// unless pr is muted.
func (p *tcpProxy) pipe(pr *proxyPair, from, to net.Conn, d time.Duration) {
	defer p.wg.Done()
	write := func(b []byte) error {
		if pr.dead.Load() {
			return nil // into the black hole
		}
		_, err := to.Write(b)
		return err
	}
	flush := func() {}
	if d > 0 {
		write, flush = delayed(write, d)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			flush()
			if !pr.dead.Load() { // a black hole passes no FIN or RST either
				to.Close()
			}
			return
		}
		write(buf[:n])
	}
}

// delayed returns a write that hands each chunk to write d after it was read, from a
// goroutine of its own so that the delay does not slow the stream down, and a flush
// that waits until the chunks so far are written (or dropped after a failed write).
func delayed(write func([]byte) error, d time.Duration) (func([]byte) error, func()) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	ch := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range ch {
			time.Sleep(time.Until(c.at))
			if write(c.b) != nil {
				for range ch {
				}
				return
			}
		}
	}()
	later := func(b []byte) error {
		ch <- chunk{time.Now().Add(d), append([]byte(nil), b...)}
		return nil
	}
	return later, func() { close(ch); <-done }
}

// blackhole mutes every connection through the proxy, those to come too, as a network
// that silently drops packets: what either side sends is read and discarded, and the
// sockets stay open.
func (p *tcpProxy) blackhole() {
	p.mu.Lock()
	p.holed = true
	p.mu.Unlock()
	p.mute()
}

// mute makes every connection so far a black hole: what either side sends is
// discarded, and no FIN or reset passes. Later connections pass normally.
func (p *tcpProxy) mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		pr.dead.Store(true)
	}
}

// halfOpen makes every connection so far half-open: it resets one side (the client's
// if client is set, else the server's) and mutes the other, whose socket stays open,
// as after a NAT rebinding or a lost mapping. Later connections pass normally.
func (p *tcpProxy) halfOpen(client bool) {
	p.mute()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		if client {
			resetConn(pr.client)
		} else {
			resetConn(pr.server)
		}
	}
}

// cut ends every connection through the proxy with a reset, as a crashed router or a
// killed process would: no Goodbye, no FIN.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		resetConn(pr.client)
		resetConn(pr.server)
	}
	p.pairs = nil
}

// resetConn closes c with a reset (SO_LINGER 0) instead of a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *tcpProxy) endpoint() crust.Endpoint {
	return crust.Endpoint{Proto: "tcp", Addr: transport.AddrPortOf(p.ln.Addr())}
}
