package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func generate(t testing.TB) *Identity {
	t.Helper()
	ident, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

func tlsConfig(t testing.TB, ident *Identity) *tls.Config {
	t.Helper()
	cfg, err := ident.TLSConfig(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// handshakeResult is one side of a TLS handshake.
type handshakeResult struct {
	err   error
	state tls.ConnectionState
}

// handshake runs a TLS handshake over a loopback TCP connection and returns both sides'
// results. Both connections are closed when the test ends.
func handshake(t *testing.T, server, client *tls.Config) (srv, cli handshakeResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- handshakeResult{err: err}
			return
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetDeadline(time.Now().Add(10 * time.Second)) // a failure, not a hang
		c := tls.Server(raw, server)
		err = c.Handshake()
		done <- handshakeResult{err: err, state: c.ConnectionState()}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, client)
	cli.err = c.Handshake()
	cli.state = c.ConnectionState()
	if cli.err != nil {
		raw.Close() // so a server waiting for our next flight gives up at once
	}
	return <-done, cli
}

func TestTLSHandshake(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	server, client, stranger := generate(t), generate(t), generate(t)
	srv, cli := handshake(t, tlsConfig(t, server), tlsConfig(t, client))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake: server %v, client %v", srv.err, cli.err)
	}
	for _, side := range []struct {
		name  string
		state tls.ConnectionState
		peer  *Identity
	}{{"server", srv.state, client}, {"client", cli.state, server}} {
		if side.state.Version != tls.VersionTLS13 {
			t.Errorf("%s: TLS version %x, want 1.3", side.name, side.state.Version)
		}
		if side.state.NegotiatedProtocol != ALPN {
			t.Errorf("%s: ALPN %q, want %q", side.name, side.state.NegotiatedProtocol, ALPN)
		}
		got, err := PeerID(side.state)
		if err != nil || got != side.peer.ID() {
			t.Errorf("%s: PeerID = %s, %v; want %s", side.name, got, err, side.peer.ID())
		}
		if got, err := ExpectPeer(side.state, side.peer.ID()); err != nil || got != side.peer.ID() {
			t.Errorf("%s: ExpectPeer(right ID) = %s, %v", side.name, got, err)
		}
		got, err = ExpectPeer(side.state, stranger.ID())
		var wp *WrongPeerError
		if !errors.As(err, &wp) {
			t.Fatalf("%s: ExpectPeer(wrong ID) = %v, want *WrongPeerError", side.name, err)
		}
		if wp.Want != stranger.ID() || wp.Got != side.peer.ID() || got != side.peer.ID() {
			t.Errorf("%s: WrongPeerError{Want: %s, Got: %s}, returned %s; want %s and %s", side.name, wp.Want, wp.Got, got, stranger.ID(), side.peer.ID())
		}
		if msg := err.Error(); !strings.Contains(msg, stranger.ID().String()) || !strings.Contains(msg, side.peer.ID().String()) {
			t.Errorf("%s: %q should name both node IDs", side.name, msg)
		}
	}
}

// TestTLSRefusals: connections that do not prove an ed25519 node key over TLS 1.3 with
// ALPN crust/1 fail on the side that checks.
func TestTLSRefusals(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	node, peer := generate(t), generate(t)
	tests := []struct {
		name       string
		client     func(*tls.Config)
		server     func(*tls.Config)
		serverFail bool // the server must fail
		clientFail bool // the client must fail
	}{
		{"client presents no certificate", func(c *tls.Config) { c.Certificates = nil }, nil, true, false},
		{"client offers no ALPN", func(c *tls.Config) { c.NextProtos = nil }, nil, true, false},
		{"client offers another ALPN", func(c *tls.Config) { c.NextProtos = []string{"h2"} }, nil, true, true},
		{"server without ALPN", nil, func(c *tls.Config) { c.NextProtos = nil }, false, true},
		{"client speaks only TLS 1.2", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12 }, nil, true, true},
		{"client has an ECDSA certificate", func(c *tls.Config) { c.Certificates = []tls.Certificate{ecdsaCertificate(t)} }, nil, true, false},
		{"server has an ECDSA certificate", nil, func(c *tls.Config) { c.Certificates = []tls.Certificate{ecdsaCertificate(t)} }, false, true},
		{"client proves another key than its certificate's", func(c *tls.Config) { c.Certificates = []tls.Certificate{otherKey(t, peer, node)} }, nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tlsConfig(t, node), tlsConfig(t, peer)
			if tt.server != nil {
				tt.server(server)
			}
			if tt.client != nil {
				tt.client(client)
			}
			srv, cli := handshake(t, server, client)
			if tt.serverFail && srv.err == nil {
				t.Errorf("server accepted the handshake")
			}
			if tt.clientFail && cli.err == nil {
				t.Errorf("client accepted the handshake")
			}
			if srv.err == nil && cli.err == nil {
				t.Errorf("both sides completed the handshake")
			}
		})
	}
}

// otherKey returns cert's certificate paired with key's private key: the handshake
// signature then does not verify under the certificate's key.
func otherKey(t testing.TB, cert, key *Identity) tls.Certificate {
	t.Helper()
	c, err := cert.Certificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.PrivateKey = key.PrivateKey()
	return c
}

func ecdsaCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func parseCert(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPeerID(t *testing.T) {
	ident, other := generate(t), generate(t)
	now := time.Now()
	good, err := ident.Certificate(now)
	if err != nil {
		t.Fatal(err)
	}
	goodCert := parseCert(t, good.Certificate[0])

	// A certificate over ident's key but signed by other's: not self-signed.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ident.PrivateKey().Public(), other.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	foreignSigned := parseCert(t, der)

	tests := []struct {
		name    string
		certs   []*x509.Certificate
		want    NodeID
		wantErr string
	}{
		{"self-signed ed25519", []*x509.Certificate{goodCert}, ident.ID(), ""},
		{"no certificate", nil, NodeID{}, ErrNoCertificate.Error()},
		{"two certificates", []*x509.Certificate{goodCert, goodCert}, NodeID{}, "2 certificates, want exactly 1"},
		{"ECDSA key", []*x509.Certificate{parseCert(t, ecdsaCertificate(t).Certificate[0])}, NodeID{}, "want ed25519"},
		// The handshake proves the key; the certificate's signature adds nothing.
		{"signed by another key", []*x509.Certificate{foreignSigned}, ident.ID(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PeerID(tls.ConnectionState{PeerCertificates: tt.certs})
			// The handshake's check says the same, with or without an expected peer.
			cs := tls.ConnectionState{PeerCertificates: tt.certs, NegotiatedProtocol: ALPN}
			want := ident.ID()
			for _, expect := range []*NodeID{nil, &want} {
				if vid, verr := VerifyConnection(cs, expect); vid != got || (verr == nil) != (err == nil) {
					t.Fatalf("VerifyConnection(expect %v) = %s, %v; PeerID %s, %v", expect != nil, vid, verr, got, err)
				}
			}
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("PeerID = %s, %v; want %s", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("PeerID = %s, %v; want an error saying %q", got, err, tt.wantErr)
			}
			if _, err := ExpectPeer(tls.ConnectionState{PeerCertificates: tt.certs}, ident.ID()); err == nil {
				t.Fatalf("ExpectPeer accepted what PeerID refused")
			}
		})
	}
	if _, err := PeerID(tls.ConnectionState{}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("PeerID without certificates = %v, want ErrNoCertificate", err)
	}
}

func TestCertificate(t *testing.T) {
	ident := generate(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tc, err := ident.Certificate(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificate) != 1 {
		t.Fatalf("chain of %d certificates, want 1", len(tc.Certificate))
	}
	if key, ok := tc.PrivateKey.(ed25519.PrivateKey); !ok || !key.Equal(ident.PrivateKey()) {
		t.Fatalf("certificate private key is %T, want the node key", tc.PrivateKey)
	}
	c := parseCert(t, tc.Certificate[0])
	if pub, ok := c.PublicKey.(ed25519.PublicKey); !ok || NodeID(pub) != ident.ID() {
		t.Errorf("certificate key %v is not the node key", c.PublicKey)
	}
	if c.Subject.CommonName != ident.ID().String() {
		t.Errorf("CommonName %q, want the node ID", c.Subject.CommonName)
	}
	if !c.NotBefore.Before(now) || !c.NotAfter.After(now.Add(10*365*24*time.Hour)) {
		t.Errorf("valid from %v to %v; want a window around %v lasting years", c.NotBefore, c.NotAfter, now)
	}
	other, err := ident.Certificate(now)
	if err != nil {
		t.Fatal(err)
	}
	if parseCert(t, other.Certificate[0]).SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Errorf("two certificates share serial number %v", c.SerialNumber)
	}
}
