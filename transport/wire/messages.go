package wire

// Version is the protocol version carried in Hello. A peer with a different major
// version is refused.
const Version = 1

// Type tags a message in the envelope. The numbers are part of the wire format.
type Type uint8

// Message types.
const (
	TypeHello    Type = 1
	TypeData     Type = 2
	TypePing     Type = 3
	TypePong     Type = 4
	TypeGoodbye  Type = 5
	TypeActivate Type = 6
	TypeRelay    Type = 7
	TypeAck      Type = 8
)

// Message is one decoded frame.
type Message interface {
	// Type returns the envelope tag.
	Type() Type
}

// Hello is the first frame in each direction. It tells the peer who we are (the NodeID
// must match the TLS certificate), where we listen, and how the peer's address looks
// from our side (address reflection).
type Hello struct {
	// Version is the protocol version, Version.
	Version uint16 `msgpack:"v"`
	// NodeID is the sender's 32-byte ed25519 public key.
	NodeID []byte `msgpack:"id"`
	// Endpoints are the sender's listen endpoints, as "proto://host:port".
	Endpoints []string `msgpack:"ep"`
	// ObservedAddr is the receiver's address as the sender sees it, "host:port".
	ObservedAddr string `msgpack:"obs"`
	// Acks says the sender acknowledges the Data it receives (Ack frames), so the
	// peer may keep what it sent until then. Peers that predate Ack leave it out.
	Acks bool `msgpack:"ack,omitempty"`
	// Stream names the sequence of Data the sender writes to the receiver on this
	// connection and the ones that replace it; a session that ends in a fault may be
	// resumed on the next connection (Resume). 0: the sender does not resume.
	Stream uint64 `msgpack:"st,omitempty"`
	// Resume, if set, says how many Data of the receiver's stream Resume.Stream the
	// sender handed to its application before that session ended in a fault. If the
	// receiver's Stream on this connection is the same, the stream goes on: its
	// Data here continue from message number Resume.Delivered (counting from 0), so
	// it resends what was lost and nothing that arrived.
	Resume *Resume `msgpack:"rs,omitempty"`
}

// Resume is a Hello's account of the peer's stream that a fault interrupted.
type Resume struct {
	Stream    uint64 `msgpack:"s"`
	Delivered uint64 `msgpack:"d"`
}

// Ack tells the peer how many Data frames the sender has received on this
// connection and handed to the application (in order: the first Count). The peer may
// forget those; what it sent beyond them, should the connection fail, may not have
// arrived.
type Ack struct {
	Count uint64 `msgpack:"c"`
}

// Data carries one user message. It is kept as its own slice so the decoder hands the
// payload to the user without another copy.
type Data []byte

// Ping asks the peer for a Pong with the same Seq; it keeps the connection alive and
// measures the round-trip time.
type Ping struct {
	Seq uint64 `msgpack:"s"`
}

// Pong answers a Ping.
type Pong struct {
	Seq uint64 `msgpack:"s"`
}

// Goodbye is the last frame a side sends on a connection. The receiver answers with its
// own Goodbye (if it has not sent one) and closes once both are through.
type Goodbye struct {
	Reason string `msgpack:"r"`
	// Dropped says the sender never made this connection live and drops whatever Data
	// reaches it: nothing the receiver wrote on it was delivered, acknowledged or not.
	// It is sent when a connection is given up while the other side's Activate may be
	// in flight (and with it the first Data).
	Dropped bool `msgpack:"d,omitempty"`
}

// Goodbye reasons.
const (
	// ReasonDuplicate closes a second connection between the same pair of nodes.
	ReasonDuplicate = "duplicate"
	// ReasonShutdown is sent when the node stops.
	ReasonShutdown = "shutdown"
	// ReasonDisconnect is sent when the application asked to disconnect the peer.
	ReasonDisconnect = "disconnect"
	// ReasonTimeout is sent when a connection stays unused past its timeout.
	ReasonTimeout = "timeout"
	// ReasonProtocol is sent when the peer broke the protocol.
	ReasonProtocol = "protocol error"
	// ReasonBlocked is sent in place of a Hello to a node our policy refuses.
	ReasonBlocked = "blocked"
)

// Activate is sent by the node with the smaller NodeID on the connection it chose to
// carry data. The larger node sends data only on a connection it received Activate on,
// so both ends always agree which connection of a pair is live.
type Activate struct {
	// Seq grows with every activation of the sender; Activates on different
	// connections can arrive out of order, and the larger node follows the newest.
	Seq uint64 `msgpack:"s"`
	// After is the Seq of the connection the sender wrote data on before this one
	// (0: none). Its data comes first: the receiver delivers this connection's data
	// only once that one has been read to its end.
	After uint64 `msgpack:"a,omitempty"`
	// Streams is where the sender (the smaller node, which decides) has both streams
	// of the session stand: the same on every Activate of a session, decided from
	// the Hellos of the session's first connection. The receiver follows it rather
	// than the Hellos of the connection it happens to activate first. Nil from peers
	// that predate it.
	Streams *Streams `msgpack:"st,omitempty"`
}

// Streams is an Activate's account of a session's two streams (see Hello.Stream).
type Streams struct {
	// Yours is the receiver's stream as the sender counts it; its first Data in this
	// session is number YoursFrom. YoursResumed: the sender's count went on from
	// YoursFrom (it had delivered that many before a fault), so the receiver resends
	// what it holds from there; otherwise YoursFrom is 0 and the stream starts over.
	Yours        uint64 `msgpack:"y"`
	YoursFrom    uint64 `msgpack:"yf,omitempty"`
	YoursResumed bool   `msgpack:"yr,omitempty"`
	// Mine is the sender's stream; its first Data in this session is number MineFrom
	// (the receiver's count goes on from there).
	Mine     uint64 `msgpack:"m"`
	MineFrom uint64 `msgpack:"mf,omitempty"`
}

// MaxRelayBody bounds Relay.Body; a node refuses to relay more.
const MaxRelayBody = 4096

// Relay carries a rendezvous message between two nodes through a third that both are
// connected to (hole punching). The sender names the destination in To; the relaying
// node sets From to the sender's NodeID, which TLS proved, and forwards the frame to
// To. A relaying node that cannot forward answers the sender with To set to the
// sender, From empty and Error saying why (not connected to To, rate limited,
// refused).
type Relay struct {
	// To is the destination's 32-byte NodeID.
	To []byte `msgpack:"t"`
	// From is the origin's NodeID, set by the relaying node.
	From []byte `msgpack:"f,omitempty"`
	// Body is the rendezvous message, opaque to the relaying node.
	Body []byte `msgpack:"b,omitempty"`
	// Error, from the relaying node, says why it did not forward.
	Error string `msgpack:"e,omitempty"`
}

// Unknown is a message of a type this version does not know; it is skipped.
type Unknown struct {
	Tag Type
}

// Type implements Message.
func (*Hello) Type() Type { return TypeHello }

// Type implements Message.
func (Data) Type() Type { return TypeData }

// Type implements Message.
func (Ping) Type() Type { return TypePing }

// Type implements Message.
func (Pong) Type() Type { return TypePong }

// Type implements Message.
func (Goodbye) Type() Type { return TypeGoodbye }

// Type implements Message.
func (Activate) Type() Type { return TypeActivate }

// Type implements Message.
func (Relay) Type() Type { return TypeRelay }

// Type implements Message.
func (Ack) Type() Type { return TypeAck }

// Type implements Message.
func (u Unknown) Type() Type { return u.Tag }
