package transport

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Buffer sizes for the frame reader and writer of one connection. 64 KiB holds four TLS
// records, so a burst of small frames costs one flush and few syscalls.
const (
	readBufferSize  = 64 << 10
	writeBufferSize = 64 << 10
)

// streamConn is a Conn over a TLS stream (TCP today).
type streamConn struct {
	raw      net.Conn
	tls      *tls.Conn
	fr       *wire.Reader
	fw       *wire.Writer
	proto    string
	peer     identity.NodeID
	hello    *wire.Hello
	outbound bool
	rtt      time.Duration
	maxFrame int
	close    sync.Once
}

var _ Conn = (*streamConn)(nil)

func (c *streamConn) PeerID() identity.NodeID        { return c.peer }
func (c *streamConn) PeerHello() *wire.Hello         { return c.hello }
func (c *streamConn) Outbound() bool                 { return c.outbound }
func (c *streamConn) Proto() string                  { return c.proto }
func (c *streamConn) LocalAddr() net.Addr            { return c.raw.LocalAddr() }
func (c *streamConn) RemoteAddr() net.Addr           { return c.raw.RemoteAddr() }
func (c *streamConn) HandshakeRTT() time.Duration    { return c.rtt }
func (c *streamConn) ReadFrame() (wire.Frame, error) { return c.fr.ReadFrame() }
func (c *streamConn) WriteData(p []byte) error       { return c.fw.WriteData(p) }
func (c *streamConn) Buffered() int                  { return c.fr.Buffered() }
func (c *streamConn) Write(m wire.Message) error     { return c.fw.Write(m) }
func (c *streamConn) Flush() error                   { return c.fw.Flush() }

// Close closes the socket at once. It sends no TLS close_notify: that could block
// behind a stalled writer, and crust's Goodbye already says a connection ends on purpose.
func (c *streamConn) Close() error {
	err := net.ErrClosed
	c.close.Do(func() { err = c.raw.Close() })
	return err
}
