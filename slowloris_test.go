package crust_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/crust-p2p/crust/transport/identity"
)

// slowConn is a connection to a node on which a slowloris client writes a byte at a
// time; closed is closed when the node has closed it.
type slowConn struct {
	write  func([]byte) error
	closed <-chan struct{}
}

// A slowloris client keeps its handshake going by sending a byte every 50 ms of a
// frame it never finishes. The node closes it once HandshakeTimeout has passed since
// it connected, however steady the trickle: the timeout is for the whole handshake,
// not for silence. Meanwhile the node serves other peers.
func TestSlowlorisHandshake(t *testing.T) {
	const timeout = time.Second
	ident, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A frame header promising 512 bytes: the Hello the client never finishes.
	helloHeader := []byte{0, 0, 2, 0}
	for _, tc := range []struct {
		name  string
		proto string
		// open connects to addr and writes the first bytes.
		open func(t *testing.T, addr string) slowConn
	}{
		{"tcp, during TLS", "tcp", func(t *testing.T, addr string) slowConn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			sc := slowConn{write: func(b []byte) error { _, err := c.Write(b); return err }, closed: closedOnEOF(t, c)}
			// A TLS handshake record of 512 bytes, the ClientHello that never ends.
			if err := sc.write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}); err != nil {
				t.Fatal(err)
			}
			return sc
		}},
		{"tcp, during Hello", "tcp", func(t *testing.T, addr string) slowConn {
			c, err := tls.Dial("tcp", addr, tlsCfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			sc := slowConn{write: func(b []byte) error { _, err := c.Write(b); return err }, closed: closedOnEOF(t, c)}
			if err := sc.write(helloHeader); err != nil {
				t.Fatal(err)
			}
			return sc
		}},
		{"quic, during Hello", "quic", func(t *testing.T, addr string) slowConn {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Keepalives: the node's idle timeout must not be what closes it.
			qc, err := quic.DialAddr(ctx, addr, tlsCfg, &quic.Config{KeepAlivePeriod: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { qc.CloseWithError(0, "") })
			s, err := qc.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sc := slowConn{write: func(b []byte) error { _, err := s.Write(b); return err }, closed: qc.Context().Done()}
			if err := sc.write(helloHeader); err != nil {
				t.Fatal(err)
			}
			return sc
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			cfg := fastConfig()
			cfg.HandshakeTimeout = timeout
			node := newNode(t, cfg, nil)
			var addr string
			for _, ep := range node.Endpoints() {
				if ep.Proto == tc.proto {
					addr = ep.Addr.String()
				}
			}
			start := time.Now()
			sc := tc.open(t, addr)
			trickling := trickle(t, sc)

			// Another peer gets in and trades messages during the trickle.
			peer := newNode(t, fastConfig(), nil)
			connect(t, peer, node)
			exchange(t, peer, node)
			served := time.Since(start)

			select {
			case <-sc.closed:
			case <-time.After(timeout + 5*time.Second):
				t.Fatalf("the node left a handshake trickling for %v (timeout %v)", time.Since(start), timeout)
			}
			lasted := time.Since(start)
			sent := <-trickling
			t.Logf("the node closed the slow handshake after %v, %d bytes in; another peer was served %v in", lasted.Round(time.Millisecond), sent, served.Round(time.Millisecond))
			if lasted < timeout-100*time.Millisecond || lasted > timeout+time.Second {
				t.Errorf("the node closed the slow handshake after %v, want about %v", lasted, timeout)
			}
		})
	}
}

// trickle writes a byte every 50 ms on sc until the node closes it, then reports how
// many it wrote.
func trickle(t *testing.T, sc slowConn) <-chan int {
	sent := make(chan int, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond) // the trickle's pace
		defer tick.Stop()
		n := 0
		defer func() { sent <- n }()
		for {
			select {
			case <-sc.closed:
				return
			case <-stop:
				return
			case <-tick.C:
			}
			if sc.write([]byte{0}) != nil {
				return
			}
			n++
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return sent
}

// closedOnEOF returns a channel closed when reading c ends: the node closed it. What
// the node sends before (its Hello) is read and dropped.
func closedOnEOF(t *testing.T, c net.Conn) <-chan struct{} {
	closed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(closed)
		io.Copy(io.Discard, c)
	}()
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	return closed
}
