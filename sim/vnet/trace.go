package vnet

import (
	"fmt"
	"maps"
	"net/netip"
	"time"
)

// DropReason says why the network dropped a datagram.
type DropReason string

// The reasons a datagram is dropped.
const (
	// DropLoss: the random loss of a link (Link.Loss).
	DropLoss DropReason = "loss"
	// DropUnroutable: no host or router has the destination address.
	DropUnroutable DropReason = "unroutable"
	// DropNoMapping: an inbound datagram reached a NAT or firewall port with no live
	// mapping (never opened, or expired).
	DropNoMapping DropReason = "no-mapping"
	// DropFiltered: a mapping exists but its filtering behaviour refuses the sender.
	DropFiltered DropReason = "filtered"
	// DropNoHairpin: a datagram to the NAT's own public address from inside, on a
	// NAT without hairpinning.
	DropNoHairpin DropReason = "no-hairpin"
	// DropPortsExhausted: the NAT had no free external port for a new mapping.
	DropPortsExhausted DropReason = "ports-exhausted"
	// DropClosedPort: no datagram socket listens on the destination port of the
	// host (a real host would answer ICMP port unreachable; the model sends nothing
	// back).
	DropClosedPort DropReason = "closed-port"
	// DropQueueFull: the receiving socket's queue was full (Config.QueueLen).
	DropQueueFull DropReason = "queue-full"
	// DropNoConnection: a stream segment reached a host port with no connection for
	// its 4-tuple and no listener taking it (a SYN to such a port, or a segment other
	// than RST, is answered with an RST).
	DropNoConnection DropReason = "no-connection"
	// DropUnsolicitedSYN: a NAT or firewall silently dropped an inbound SYN that no
	// mapping and filter let in (NATConfig.TCPUnsolicited DropSYN).
	DropUnsolicitedSYN DropReason = "syn-dropped"
	// DropRejectedSYN: a NAT or firewall refused an inbound SYN that no mapping and
	// filter let in and answered with an RST (NATConfig.TCPUnsolicited RejectSYN).
	DropRejectedSYN DropReason = "syn-rejected"
	// DropBacklogFull: a SYN for a listener whose backlog of connections not yet
	// accepted was full (ListenBacklog); the dialler retransmits.
	DropBacklogFull DropReason = "backlog-full"
	// DropUnexpected: a stream segment the connection's state has no use for, such
	// as a duplicate SYN-ACK.
	DropUnexpected DropReason = "unexpected-segment"
)

// Stats counts datagrams and stream segments. It is a copy: later traffic does not
// change it.
type Stats struct {
	// Sent counts datagrams written by sockets.
	Sent uint64
	// Delivered counts datagrams queued to a receiving socket.
	Delivered uint64
	// SegmentsSent counts stream segments sent by hosts (SYN, SYN-ACK, ACK, RST, FIN
	// and data), and RSTs sent by routers that reject SYNs.
	SegmentsSent uint64
	// SegmentsDelivered counts stream segments a host handed to a connection or
	// listener.
	SegmentsDelivered uint64
	// Dropped counts dropped datagrams and segments by reason.
	Dropped map[DropReason]uint64
}

func (s Stats) clone() Stats {
	s.Dropped = maps.Clone(s.Dropped)
	return s
}

// EventKind says what happened to a datagram at one step of its way.
type EventKind string

// The steps of a datagram's way.
const (
	// EventSend: a socket wrote the datagram.
	EventSend EventKind = "send"
	// EventOutbound: a NAT translated the source (or a firewall let it out).
	EventOutbound EventKind = "outbound"
	// EventInbound: a NAT translated the destination back (or a firewall let it in).
	EventInbound EventKind = "inbound"
	// EventHairpin: a NAT turned a datagram for its own public address back inside.
	EventHairpin EventKind = "hairpin"
	// EventDeliver: the datagram was queued to the receiving socket.
	EventDeliver EventKind = "deliver"
	// EventDrop: the datagram was dropped; Event.Reason says why.
	EventDrop EventKind = "drop"
)

// Event describes one step of one datagram or stream segment, for Config.Trace.
type Event struct {
	// Time is the scheduler's time of the step.
	Time time.Time
	// Kind is what happened.
	Kind EventKind
	// Node names the host or router where it happened ("host 192.0.2.1",
	// "nat 203.0.113.1").
	Node string
	// Src and Dst are the datagram's addresses after the step.
	Src, Dst netip.AddrPort
	// Len is the payload length in bytes.
	Len int
	// Reason is set for EventDrop.
	Reason DropReason
	// Proto is "udp" for datagrams and "tcp" for stream segments.
	Proto string
	// Flags names a stream segment's control flags ("SYN", "SYN-ACK", "ACK", "RST",
	// "FIN") or "DATA"; empty for datagrams.
	Flags string
}

// String formats the event on one line, as a replayable log of a run.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s %s->%s len=%d", e.Time.Format("15:04:05.000000"), e.Node, e.Kind, e.Src, e.Dst, e.Len)
	if e.Proto == protoTCP.String() {
		s += " tcp " + e.Flags
	}
	if e.Reason != "" {
		s += " reason=" + string(e.Reason)
	}
	return s
}
