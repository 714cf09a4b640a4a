package libp2pbench

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
)

// benchRawTLSSetup times net.Dial and a TLS 1.3 client handshake against a
// tls.Listen server: the floor under crust-tcp's Connect. Both sides use crust's own
// TLS configuration (package identity): a self-signed Ed25519 certificate each,
// client certificate required, no session resumption, so every handshake is a full
// mutual one. The client's handshake ends before the server has checked the
// client's certificate; with confirmed set, the client also waits for the byte the
// server sends once it has: then both ends know they are authenticated, as when
// crust's Connect returns.
func benchRawTLSSetup(b *testing.B, confirmed bool) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", nodeTLSConfig(b))
	if err != nil {
		b.Fatalf("raw TLS listen: %v", err)
	}
	var served sync.WaitGroup
	served.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener is closed
			}
			served.Go(func() { serveTLS(c) })
		}
	})
	b.Cleanup(func() {
		ln.Close()
		served.Wait()
	})
	clientConfig := nodeTLSConfig(b)
	addr := ln.Addr().String()
	b.ResetTimer()
	for range b.N {
		raw, err := net.DialTimeout("tcp", addr, connectTimeout)
		if err != nil {
			b.Fatalf("raw TLS dial: %v", err)
		}
		c := tls.Client(raw, clientConfig)
		if err := c.Handshake(); err != nil {
			b.Fatalf("raw TLS handshake: %v", err)
		}
		if confirmed {
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				b.Fatalf("raw TLS: the server's confirmation: %v", err)
			}
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}

// serveTLS completes the server's handshake (checking the client's certificate),
// sends one byte to say so, and reads until the client closes.
func serveTLS(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connectTimeout))
	if err := c.(*tls.Conn).Handshake(); err != nil {
		return
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// nodeTLSConfig returns the TLS configuration of a fresh crust identity.
func nodeTLSConfig(b *testing.B) *tls.Config {
	id, err := identity.Generate()
	if err != nil {
		b.Fatalf("generating an identity: %v", err)
	}
	cfg, err := id.TLSConfig(time.Now())
	if err != nil {
		b.Fatalf("making the TLS config: %v", err)
	}
	return cfg
}
