package admin

import (
	"encoding/json"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/crust-p2p/crust"
)

// request is one request line. Fields an op does not use are ignored.
type request struct {
	Op string `json:"op"`
	// Contact is connect's contact text.
	Contact string `json:"contact,omitempty"`
	// TimeoutMS bounds connect; 0 means defaultConnectTimeout.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// ID is the peer of disconnect and send.
	ID string `json:"id,omitempty"`
	// Target is what block and unblock act on: a NodeID or an IP prefix.
	Target string `json:"target,omitempty"`
	// Text and Data are send's payload: exactly one is given. Pointers tell an empty
	// payload from a missing one.
	Text *string `json:"text,omitempty"`
	Data *[]byte `json:"data,omitempty"`
}

// answer is one answer line.
type answer struct {
	OK     bool   `json:"ok"`
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Self is the result of "self": this node.
type Self struct {
	// ID is the node's NodeID.
	ID string `json:"id"`
	// Contact is the node's contact text, to hand to peers for "connect".
	Contact string `json:"contact"`
	// Endpoints are where the node listens, "tcp://192.0.2.1:5483".
	Endpoints []string `json:"endpoints"`
	// Reflected are the node's endpoints as peers saw them.
	Reflected []string `json:"reflected"`
	// NAT is what the node knows of the NATs in front of it.
	NAT NAT `json:"nat"`
}

// NAT is what a node knows of the NAT in front of it.
type NAT struct {
	// Behavior is the NAT's mapping behaviour from STUN: "endpoint-independent",
	// "endpoint-dependent" (symmetric), "no-nat" or "unknown" (no STUN servers, or
	// too few answers to tell).
	Behavior string `json:"behavior"`
	// Reflected are the node's endpoints as seen from outside: by STUN servers and
	// by peers.
	Reflected []string `json:"reflected"`
	// STUN are the external endpoints the STUN servers agree on, "quic://ip:port"
	// for the UDP socket and "tcp://ip:port" for the TCP listen port.
	STUN []string `json:"stun"`
	// UPnP are the port mappings on the LAN's gateway.
	UPnP []string `json:"upnp"`
	// ExternalIP is the gateway's external address, if a gateway answered.
	ExternalIP string `json:"external_ip,omitempty"`
	// Errors say what failed in the last STUN check.
	Errors []string `json:"errors"`
	// Checked is when STUN was last asked; null if never.
	Checked *time.Time `json:"checked"`
}

// Peer is one element of the result of "peers": a connected peer.
type Peer struct {
	// ID is the peer's NodeID.
	ID string `json:"id"`
	// Kind is how the live connection was made, e.g. "tcp-direct".
	Kind string `json:"kind"`
	// Addr is the peer's address on the live connection, "ip:port".
	Addr string `json:"addr"`
	// LocalAddr is this node's address on the live connection.
	LocalAddr string `json:"local_addr"`
	// RTTms is the smoothed round-trip time in milliseconds.
	RTTms float64 `json:"rtt_ms"`
	// Since is when the peer connected (RFC 3339 with nanoseconds on the wire).
	Since time.Time `json:"since"`
	// Outbound reports whether this node dialled the live connection.
	Outbound bool `json:"outbound"`
	// BytesIn and BytesOut count message payload bytes since the peer connected.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// MsgsIn and MsgsOut count messages since the peer connected.
	MsgsIn  uint64 `json:"msgs_in"`
	MsgsOut uint64 `json:"msgs_out"`
}

// ConnectResult is the result of "connect".
type ConnectResult struct {
	// ID is the connected peer's NodeID.
	ID string `json:"id"`
	// Kind is how the live connection was made, e.g. "tcp-direct"; left out if the
	// peer was lost again before it could be read.
	Kind string `json:"kind,omitempty"`
}

// BootstrapEntry is one element of the result of "bootstrap": a contact the bootstrap
// cache learned, best first.
type BootstrapEntry struct {
	// ID is the node's NodeID.
	ID string `json:"id"`
	// Endpoints are where it was reached or said it could be, most recent first.
	Endpoints []string `json:"endpoints"`
	// LastSuccess is when a direct connection to it last succeeded; nil (null) if
	// never.
	LastSuccess *time.Time `json:"last_success"`
	// Failures counts the failed attempts since the last success.
	Failures int `json:"failures"`
}

// BlockResult is the result of "block" and "unblock".
type BlockResult struct {
	// Target is what was blocked or unblocked, as the daemon keeps it: a NodeID, or
	// an IP prefix ("192.0.2.0/24"; an address as "192.0.2.7/32").
	Target string `json:"target"`
	// Changed is false for a block of what was blocked already.
	Changed bool `json:"changed"`
	// Note, if set, is something to know about the change, e.g. that the config file
	// blocks the target again at the next start.
	Note string `json:"note,omitempty"`
}

// Blocked is the result of "blocked": the node's lists as they are now, the config
// file's and those changed at run time.
type Blocked struct {
	// IDs are the blacklisted NodeIDs, sorted.
	IDs []string `json:"ids"`
	// Prefixes are the blacklisted IP prefixes, IPv4 first, sorted.
	Prefixes []string `json:"prefixes"`
	// Whitelist, if not empty, is the only NodeIDs the node deals with; it is set in
	// the config file only.
	Whitelist []string `json:"whitelist"`
}

// Stats is the result of "stats": how connecting went since the daemon started.
type Stats struct {
	// Ladder counts, per ladder step, its runs (attempts), and per connection kind
	// the connections it made (successes): "tcp-direct", "tcp-upnp", "tcp-punch",
	// "firewall-punch", "quic-direct", "quic-punch".
	Ladder map[string]StepCount `json:"ladder"`
}

// StepCount is one entry of Stats.Ladder.
type StepCount struct {
	Attempts  uint64 `json:"attempts"`
	Successes uint64 `json:"successes"`
}

// Event types, the "type" of an Event.
const (
	// EventConnected: a peer connected (ID, Kind, Addr, RTTms, Outbound).
	EventConnected = "connected"
	// EventLost: a peer's connection ended (ID, Reason).
	EventLost = "lost"
	// EventMessage: a message from a peer (From, Data, Text).
	EventMessage = "message"
	// EventListenerStarted: a listener accepts connections (Endpoint).
	EventListenerStarted = "listener_started"
	// EventListenerFailed: a listen address failed (Addr, Error).
	EventListenerFailed = "listener_failed"
	// EventOverflow: the subscriber fell behind and was cut off; the stream ends.
	EventOverflow = "overflow"
)

// Event is one line of an "events" stream. Type says which fields are set; on the
// wire an event carries exactly its type's fields.
type Event struct {
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// ID is the peer (connected, lost).
	ID string `json:"id,omitempty"`
	// Kind is how the connection was made, e.g. "tcp-direct" (connected).
	Kind string `json:"kind,omitempty"`
	// Addr is the peer's "ip:port" (connected) or the address tried (listener_failed).
	Addr string `json:"addr,omitempty"`
	// RTTms is the handshake round-trip time in milliseconds (connected).
	RTTms float64 `json:"rtt_ms,omitempty"`
	// Outbound reports whether this node dialled (connected).
	Outbound bool `json:"outbound,omitempty"`
	// Reason says why the connection ended (lost).
	Reason string `json:"reason,omitempty"`
	// From is the sender (message).
	From string `json:"from,omitempty"`
	// Text is Data as text, when Data is valid UTF-8 (message). When marshalling, it
	// is derived from Data.
	Text string `json:"text,omitempty"`
	// Data is the payload, base64 on the wire (message).
	Data []byte `json:"data,omitempty"`
	// Endpoint is where the listener listens (listener_started).
	Endpoint string `json:"endpoint,omitempty"`
	// Error says why the listener failed (listener_failed).
	Error string `json:"error,omitempty"`
}

// eventWire is Event as sent: pointers keep false, zero and empty values that belong
// to the event's type.
type eventWire struct {
	Type     string   `json:"type"`
	ID       string   `json:"id,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Addr     string   `json:"addr,omitempty"`
	RTTms    *float64 `json:"rtt_ms,omitempty"`
	Outbound *bool    `json:"outbound,omitempty"`
	Reason   *string  `json:"reason,omitempty"`
	From     string   `json:"from,omitempty"`
	Text     *string  `json:"text,omitempty"`
	Data     *[]byte  `json:"data,omitempty"`
	Endpoint string   `json:"endpoint,omitempty"`
	Error    *string  `json:"error,omitempty"`
}

// MarshalJSON writes the fields of e's type, zero or not: a connected event always
// has "outbound", a message always "data", and "text" exactly when Data is UTF-8.
func (e Event) MarshalJSON() ([]byte, error) {
	w := eventWire{Type: e.Type, ID: e.ID, Kind: e.Kind, Addr: e.Addr, From: e.From, Endpoint: e.Endpoint}
	switch e.Type {
	case EventConnected:
		w.RTTms, w.Outbound = &e.RTTms, &e.Outbound
	case EventLost:
		w.Reason = &e.Reason
	case EventMessage:
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		w.Data = &data
		if utf8.Valid(data) {
			text := string(data)
			w.Text = &text
		}
	case EventListenerFailed:
		w.Error = &e.Error
	}
	return json.Marshal(w)
}

// eventFrom converts a service event; ok is false for an event type it does not
// know.
func eventFrom(ev crust.Event) (e Event, ok bool) {
	switch ev := ev.(type) {
	case crust.PeerConnected:
		return Event{Type: EventConnected, ID: ev.ID.String(), Kind: ev.Kind, Addr: addrString(ev.Addr),
			RTTms: millis(ev.RTT), Outbound: ev.Outbound}, true
	case crust.PeerLost:
		return Event{Type: EventLost, ID: ev.ID.String(), Reason: ev.Reason}, true
	case crust.Message:
		return Event{Type: EventMessage, From: ev.From.String(), Data: ev.Data}, true
	case crust.ListenerStarted:
		return Event{Type: EventListenerStarted, Endpoint: ev.Endpoint.String()}, true
	case crust.ListenerFailed:
		e := Event{Type: EventListenerFailed, Addr: ev.Addr}
		if ev.Err != nil {
			e.Error = ev.Err.Error()
		}
		return e, true
	}
	return Event{}, false
}

func peerFrom(p crust.PeerInfo) Peer {
	return Peer{
		ID:        p.ID.String(),
		Kind:      p.Kind,
		Addr:      addrString(p.Addr),
		LocalAddr: addrString(p.LocalAddr),
		RTTms:     millis(p.RTT),
		Since:     p.Since,
		Outbound:  p.Outbound,
		BytesIn:   p.BytesIn,
		BytesOut:  p.BytesOut,
		MsgsIn:    p.MsgsIn,
		MsgsOut:   p.MsgsOut,
	}
}

func bootstrapEntryFrom(e crust.BootstrapEntry) BootstrapEntry {
	out := BootstrapEntry{ID: e.ID.String(), Endpoints: endpointStrings(e.Endpoints), Failures: e.Failures}
	if !e.LastSuccess.IsZero() {
		t := e.LastSuccess
		out.LastSuccess = &t
	}
	return out
}

// endpointStrings returns the text forms, never nil (JSON [] rather than null).
func endpointStrings(eps []crust.Endpoint) []string {
	out := make([]string, 0, len(eps))
	for _, ep := range eps {
		out = append(out, ep.String())
	}
	return out
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
