package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Buffer sizes for the frame reader and writer of one connection. Both are taken from
// a shared pool while bytes wait in them and given back when drained, so an idle
// connection holds neither. 64 KiB holds four TLS records: a read rarely has to split
// one (with 16 KiB, 64-byte messages came 20% slower), and a burst of small frames
// costs one flush.
const (
	readBufferSize  = 64 << 10
	writeBufferSize = 64 << 10
)

// streamConn is a Conn over an encrypted byte stream: TLS over TCP, or a QUIC stream.
type streamConn struct {
	closeFn func() error // closes the underlying connection at once
	// lingerFn closes once the peer has closed, or after the timeout; nil: at once.
	lingerFn func(timeout time.Duration)
	local    net.Addr
	remote   net.Addr
	fr       *wire.Reader
	fw       *wire.Writer
	proto    string
	peer     identity.NodeID
	hello    *wire.Hello // the peer's
	ours     *wire.Hello
	outbound bool
	rtt      time.Duration
	maxFrame int
	close    sync.Once
}

var _ Conn = (*streamConn)(nil)

func (c *streamConn) PeerID() identity.NodeID            { return c.peer }
func (c *streamConn) PeerHello() *wire.Hello             { return c.hello }
func (c *streamConn) LocalHello() *wire.Hello            { return c.ours }
func (c *streamConn) Outbound() bool                     { return c.outbound }
func (c *streamConn) Proto() string                      { return c.proto }
func (c *streamConn) LocalAddr() net.Addr                { return c.local }
func (c *streamConn) RemoteAddr() net.Addr               { return c.remote }
func (c *streamConn) HandshakeRTT() time.Duration        { return c.rtt }
func (c *streamConn) ReadFrame() (wire.Frame, error)     { return c.fr.ReadFrame() }
func (c *streamConn) ReadFrameLent() (wire.Frame, error) { return c.fr.ReadFrameLent() }
func (c *streamConn) ReadRun(lend bool, data func([]byte) bool) (wire.Frame, int, error) {
	return c.fr.ReadRun(lend, data)
}
func (c *streamConn) WriteData(p []byte) error   { return c.fw.WriteData(p) }
func (c *streamConn) WriteFrames(b []byte) error { return c.fw.WriteFrames(b) }
func (c *streamConn) Buffered() int              { return c.fr.Buffered() }
func (c *streamConn) Write(m wire.Message) error { return c.fw.Write(m) }
func (c *streamConn) Flush() error               { return c.fw.Flush() }

// Close closes the connection at once. Over TCP it sends no TLS close_notify (that
// could block behind a stalled writer, and crust's Goodbye already says a connection
// ends on purpose) and resets instead of a FIN (abortTCP).
func (c *streamConn) Close() error {
	err := net.ErrClosed
	c.close.Do(func() { err = c.closeFn() })
	return err
}

// CloseAfterPeer closes the connection once the peer has everything we wrote, or
// after timeout; call it when both sides' Goodbyes are through. Over TCP that is at
// once: the data already written, then the FIN, still reach the peer. A QUIC close
// would cut off data not yet acknowledged, so there the stream is finished and the
// connection closes when the peer's FIN shows it has read our Goodbye.
func (c *streamConn) CloseAfterPeer(timeout time.Duration) {
	if c.lingerFn == nil {
		c.Close()
		return
	}
	c.close.Do(func() { c.lingerFn(timeout) })
}

// newStreamConn wraps a handshaken stream; the Hello exchange comes next.
func newStreamConn(rw io.ReadWriter, closeFn func() error, local, remote net.Addr, proto string, peer identity.NodeID, outbound bool, maxFrame int) *streamConn {
	return &streamConn{
		closeFn:  closeFn,
		local:    local,
		remote:   remote,
		fr:       wire.NewReader(rw, readBufferSize, maxFrame),
		fw:       wire.NewWriter(rw, writeBufferSize),
		maxFrame: maxFrame,
		proto:    proto,
		peer:     peer,
		outbound: outbound,
	}
}

// helloFor builds our Hello for a connection to remote.
func helloFor(self identity.NodeID, eps []Endpoint, remote net.Addr) *wire.Hello {
	h := &wire.Hello{Version: wire.Version, NodeID: self[:], ObservedAddr: AddrPortOf(remote).String(), Acks: true}
	for _, ep := range eps {
		h.Endpoints = append(h.Endpoints, ep.String())
	}
	return h
}

// expectPeerConfig returns base with the extra check, inside the handshake, that the
// peer proves want, so a wrong peer gets a TLS alert rather than silence. base comes
// from identity.TLSConfig.
func expectPeerConfig(base *tls.Config, want identity.NodeID) *tls.Config {
	cfg := base.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := identity.VerifyConnection(cs, &want)
		return err
	}
	return cfg
}

// tlsError unwraps a WrongPeerError from a handshake error, so callers can match it.
func tlsError(err error) error {
	var wp *identity.WrongPeerError
	if errors.As(err, &wp) {
		return wp
	}
	return fmt.Errorf("TLS: %w", err)
}

// expandEndpoints lists where bound endpoints can be reached: each as it is, or for an
// unspecified address, every non-loopback, non-link-local unicast address of that
// family on the host.
func expandEndpoints(n Net, bound []Endpoint, log *slog.Logger) []Endpoint {
	var out []Endpoint
	for _, b := range bound {
		if !b.Addr.Addr().IsUnspecified() {
			out = append(out, b)
			continue
		}
		addrs, err := n.InterfaceAddrs()
		if err != nil {
			log.Warn("listing interface addresses", "err", err)
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.Is4() != b.Addr.Addr().Is4() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
				continue
			}
			out = append(out, Endpoint{Proto: b.Proto, Addr: netip.AddrPortFrom(ip, b.Addr.Port())})
		}
	}
	return out
}
