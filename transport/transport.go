package transport

import (
	"context"
	"net"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Transport dials verified connections of one kind.
type Transport interface {
	// Proto is the endpoint protocol this transport dials, e.g. "tcp".
	Proto() string
	// Dial connects to ep and proves that the node there is want. A different node
	// is a *identity.WrongPeerError and the connection is closed.
	Dial(ctx context.Context, ep Endpoint, want identity.NodeID) (Conn, error)
}

// Listener accepts raw connections; each must complete its Handshake before use.
type Listener interface {
	// Accept waits for the next inbound connection.
	Accept() (Incoming, error)
	// Endpoint is the address the listener is bound to.
	Endpoint() Endpoint
	// Close stops the listener; blocked Accept calls return an error.
	Close() error
}

// Incoming is an accepted connection before its TLS handshake and Hello exchange.
type Incoming interface {
	// Handshake runs TLS and the Hello exchange, bounded by ctx and the transport's
	// handshake timeout. On error the connection is closed.
	Handshake(ctx context.Context) (Conn, error)
	// RemoteAddr is the peer's address.
	RemoteAddr() net.Addr
	// Close drops the connection without a handshake.
	Close() error
}

// Conn is a verified, framed connection to one peer. Read is for one goroutine, Write
// and Flush for one other goroutine; Close may be called from anywhere, any number of
// times.
type Conn interface {
	// PeerID is the NodeID proven by the peer's certificate.
	PeerID() identity.NodeID
	// PeerHello is the Hello the peer sent.
	PeerHello() *wire.Hello
	// LocalHello is the Hello we sent.
	LocalHello() *wire.Hello
	// Outbound reports whether this side dialled. On a hole-punched TCP connection,
	// where both sides may have dialled, it reports whether this side is the TLS
	// client; the two ends always disagree, so both know which side initiated.
	Outbound() bool
	// Proto is the transport protocol, e.g. "tcp".
	Proto() string
	// LocalAddr and RemoteAddr are the socket addresses.
	LocalAddr() net.Addr
	// RemoteAddr is the peer's socket address.
	RemoteAddr() net.Addr
	// HandshakeRTT estimates the round-trip time from the handshake.
	HandshakeRTT() time.Duration
	// ReadFrame returns the next frame: a Data payload or another message.
	ReadFrame() (wire.Frame, error)
	// ReadFrameLent is ReadFrame with a Data payload that is valid only until the
	// next read (wire.Reader.ReadFrameLent).
	ReadFrameLent() (wire.Frame, error)
	// ReadRun reads a run of Data frames into data, lent or not, up to the first
	// other frame (wire.Reader.ReadRun).
	ReadRun(lend bool, data func([]byte) bool) (wire.Frame, int, error)
	// Buffered is how many received bytes Read can consume without blocking.
	Buffered() int
	// Write buffers one message; Flush sends what is buffered.
	Write(wire.Message) error
	// WriteData buffers one Data message carrying payload (the hot path: no boxing).
	WriteData(payload []byte) error
	// WriteFrames writes Data frames already encoded by wire.AppendData, back to
	// back; frames is not kept after the call.
	WriteFrames(frames []byte) error
	// Flush sends buffered messages.
	Flush() error
	// Close closes the connection at once; data not yet delivered may be lost.
	Close() error
	// CloseAfterPeer closes once the peer has everything we wrote (our Goodbye last),
	// or after timeout. Call it after both sides' Goodbyes.
	CloseAfterPeer(timeout time.Duration)
}
