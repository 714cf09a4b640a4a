package actors

import (
	"net/netip"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Event is something that happened, delivered on the Service's event channel.
type Event interface{ isEvent() }

// PeerConnected reports that a peer is connected: the first connection of the pair is
// live. It comes once per peer until a PeerLost.
type PeerConnected struct {
	// ID is the peer.
	ID identity.NodeID
	// Kind is the ladder step that made the connection: "tcp-direct", "tcp-upnp",
	// "tcp-punch", "quic-direct" or "quic-punch". An inbound connection reports its
	// protocol and "-direct".
	Kind string
	// Addr is the peer's address on that connection.
	Addr netip.AddrPort
	// RTT is the round-trip time measured during the handshake.
	RTT time.Duration
	// Outbound reports whether we dialled.
	Outbound bool
	// Tried lists the ladder steps before Kind that were skipped or failed, and why;
	// empty for an inbound connection.
	Tried []StepResult
	// Took is how long the ladder step that made the connection ran (for a punch,
	// the rendezvous exchange and the punch). Zero where this node did not climb the
	// ladder to it: an inbound connection, or this end of a punch the peer started.
	Took time.Duration
}

// PeerLost reports that the peer's connection ended. Messages queued for it are dropped.
type PeerLost struct {
	// ID is the peer.
	ID identity.NodeID
	// Reason says why, e.g. "peer shut down" or "no frame for 12s".
	Reason string
	// Reconnecting is set when the connection failed without the peer leaving (a
	// timeout, a reset): the node redials it for Config.ReconnectFor, and a
	// PeerConnected follows if that works. The session's unconfirmed messages are
	// held meanwhile, for the next session to resend, rather than given back in an
	// Undelivered before this PeerLost; they come back only if that session cannot
	// resume (Undelivered before its PeerConnected) or reconnecting stops.
	Reconnecting bool
}

// Undelivered gives back messages that Send accepted for a peer and that may not have
// reached it: Send's promise is that every message is delivered or comes back here.
// It comes before the PeerLost of the session, oldest message first.
type Undelivered struct {
	// ID is the peer.
	ID identity.NodeID
	// Unacknowledged were written on a connection that then failed before the peer
	// acknowledged them (some may have arrived: the acknowledgement was in flight), or
	// on one the peer gave up before taking it live, which drops them all
	// (Goodbye.Dropped).
	Unacknowledged [][]byte
	// Unsent never left this node: still queued when the session ended.
	Unsent [][]byte
}

// Message is a message from a peer. Data is owned by the receiver, except with
// Config.OnMessage, which is lent Data for the call.
type Message struct {
	// From is the sender.
	From identity.NodeID
	// Data is the payload, as passed to Send.
	Data []byte
}

// ListenerStarted reports a listener accepting connections.
type ListenerStarted struct {
	// Endpoint is where it listens.
	Endpoint transport.Endpoint
}

// ListenerFailed reports a listener that could not start or stopped with an error.
type ListenerFailed struct {
	// Addr is the address it tried.
	Addr string
	// Err says why.
	Err error
}

func (PeerConnected) isEvent()   {}
func (PeerLost) isEvent()        {}
func (Message) isEvent()         {}
func (Undelivered) isEvent()     {}
func (ListenerStarted) isEvent() {}
func (ListenerFailed) isEvent()  {}
