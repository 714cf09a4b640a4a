package actors

import (
	"net/netip"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/beacon"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Messages between actors, and from goroutines to the actor that owns them. Requests
// carry a buffered reply channel, so the actor never blocks on a caller that gave up.

// ConnectPeer asks the Supervisor to connect to a node; Result gets nil once the peer
// is connected, or the error.
type ConnectPeer struct {
	Contact transport.Contact
	Result  chan<- error
}

// DisconnectPeer asks the Supervisor to close the connection to a node.
type DisconnectPeer struct {
	ID     identity.NodeID
	Result chan<- error
}

// InboundConn hands a handshaken inbound connection from a Listener to the Supervisor,
// which routes it to the peer's actor.
type InboundConn struct {
	Conn transport.Conn
}

// Shutdown asks the Supervisor, then each Peer, to say Goodbye on every connection.
// Done is closed when every peer has finished or Grace has passed.
type Shutdown struct {
	Grace time.Duration
	Done  chan struct{}
}

// peerShutdown tells a Peer to say Goodbye everywhere; it closes done when its
// connections are through.
type peerShutdown struct {
	done chan struct{}
}

// dialResult reports the end of a peer's climb up the ladder: the connection and the
// step that made it, with the steps that failed before it and how long it ran; or the
// error.
type dialResult struct {
	conn  transport.Conn
	step  string
	tried []StepResult
	took  time.Duration
	err   error
	gen   int // which dial of the peer: a stale one is dropped
}

// peerIdle tells the Supervisor that a peer actor has nothing left to do; the
// Supervisor forgets it (if it is still the actor for id) and stops it.
type peerIdle struct {
	id  identity.NodeID
	pid *actor.PID
}

// connControl reports a control frame read on one of a peer's connections.
type connControl struct {
	cs  *connState
	msg wire.Message
}

// readerEnded reports that a connection's reader stopped: err is the read error, or
// nil with bye set when the peer said Goodbye.
type readerEnded struct {
	cs  *connState
	bye *wire.Goodbye
	err error
}

// writerEnded reports that a connection's writer stopped, after writing our Goodbye
// (err nil) or on an error.
type writerEnded struct {
	cs  *connState
	err error
}

// keepaliveTick drives pings, liveness checks and timeouts of a Peer.
type keepaliveTick struct{}

// countConns asks how many connections a peer actor holds (live or closing).
type countConns struct {
	id     identity.NodeID
	result chan int
}

// countPeers asks the Supervisor how many peer actors it holds.
type countPeers struct {
	result chan int
}

// PeerSeen tells the Supervisor that a node was seen (on the LAN beacon, say) at the
// contact's endpoints; the Supervisor connects to it unless it is connected.
type PeerSeen struct {
	Contact transport.Contact
	Via     string // how it was seen, for logs
}

// beaconHeard reports a beacon packet heard by the Beacon actor's reader.
type beaconHeard struct {
	packet beacon.Packet
	from   netip.AddrPort
}

// beaconTick drives the Beacon actor's periodic announce.
type beaconTick struct{}
