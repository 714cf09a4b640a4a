package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// ALPN is the application protocol every crust connection negotiates.
const ALPN = "crust/1"

// Certificate returns a self-signed TLS certificate over the node key. now sets its
// validity window, which peers do not check (the key is what counts) but x509 needs.
func (i *Identity) Certificate(now time.Time) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: i.id.String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, i.key.Public(), i.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: i.key}, nil
}

// TLSConfig returns the TLS 1.3 configuration for this node. The same config serves as
// client and server: both sides present their certificate and both verify the peer's
// with PeerID. Which NodeID a dialer expects is checked after the handshake
// (ExpectPeer), so one config serves every dial.
func (i *Identity) TLSConfig(now time.Time) (*tls.Config, error) {
	cert, err := i.Certificate(now)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPN},
		ClientAuth:   tls.RequireAnyClientCert,
		// There is no CA: the certificate chain is replaced by the check below that the
		// certificate carries an ed25519 key, which then is the NodeID (the handshake
		// proves the peer holds it).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := VerifyConnection(cs, nil)
			return err
		},
	}, nil
}

// VerifyConnection is the check of TLSConfig: ALPN crust/1 negotiated and PeerID's
// certificate check; with want set, the peer must also be that node
// (*WrongPeerError). A config that expects one peer calls it instead of the default.
func VerifyConnection(cs tls.ConnectionState, want *NodeID) (NodeID, error) {
	if cs.NegotiatedProtocol != ALPN {
		return NodeID{}, fmt.Errorf("peer did not negotiate ALPN %q", ALPN)
	}
	if want != nil {
		return ExpectPeer(cs, *want)
	}
	return PeerID(cs)
}

// PeerID returns the NodeID proven by the peer's certificate in a completed handshake:
// the key of its single certificate, which must be ed25519.
//
// The certificate's own signature is not checked. TLS 1.3's CertificateVerify, which
// crypto/tls always checks, already proves that the peer holds that key, and the key
// is all a NodeID means; nothing else in the certificate is used. Checking the
// self-signature too cost a second ed25519 verification (about 33 µs) on each side's
// critical path of every handshake.
func PeerID(cs tls.ConnectionState) (NodeID, error) {
	if len(cs.PeerCertificates) == 0 {
		return NodeID{}, ErrNoCertificate
	}
	if len(cs.PeerCertificates) != 1 {
		return NodeID{}, fmt.Errorf("peer presented %d certificates, want exactly 1", len(cs.PeerCertificates))
	}
	cert := cs.PeerCertificates[0]
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return NodeID{}, fmt.Errorf("peer certificate key is %T, want ed25519", cert.PublicKey)
	}
	return NodeIDFromBytes(pub)
}

// ExpectPeer checks that a completed handshake proved the NodeID want.
func ExpectPeer(cs tls.ConnectionState, want NodeID) (NodeID, error) {
	got, err := PeerID(cs)
	if err != nil {
		return NodeID{}, err
	}
	if got != want {
		return got, &WrongPeerError{Want: want, Got: got}
	}
	return got, nil
}
