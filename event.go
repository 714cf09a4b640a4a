package crust

import (
	"github.com/crust-p2p/crust/actors"
	"github.com/crust-p2p/crust/bootstrap"
)

// Event is what Events delivers: one of PeerConnected, PeerLost, Message,
// ListenerStarted, ListenerFailed.
type Event = actors.Event

// PeerConnected reports a peer connected: Kind says how ("tcp-direct"), RTT is the
// handshake round-trip time. It comes once per peer until a PeerLost.
type PeerConnected = actors.PeerConnected

// PeerLost reports a peer's connection ended, with the reason. Messages still queued
// for it, or sent on a connection that failed and not acknowledged, come back in an
// Undelivered event before it, unless the node is reconnecting (Reconnecting): then
// they are held for the next session, which resends those the peer lacks. Send
// returns ErrNotConnected until the peer connects again.
type PeerLost = actors.PeerLost

// Undelivered gives back messages Send accepted that may not have reached the peer:
// Send's promise is that a message is delivered or comes back here, never dropped
// without a word.
type Undelivered = actors.Undelivered

// Message is a message from a peer, in the order the peer sent them.
type Message = actors.Message

// ListenerStarted reports a listener accepting connections.
type ListenerStarted = actors.ListenerStarted

// ListenerFailed reports a listen address that could not be bound.
type ListenerFailed = actors.ListenerFailed

// PeerInfo describes a connected peer, as listed by Peers.
type PeerInfo = actors.PeerInfo

// Traffic counts messages and their payload bytes, each way; see Service.Traffic.
type Traffic = actors.Traffic

// Delivery counts resumed streams, resent messages and messages given back; see
// Service.Delivery.
type Delivery = actors.Delivery

// StepResult says how one step of the connection ladder went: skipped (and why),
// failed (and why), or connected.
type StepResult = actors.StepResult

// LadderError is Connect's error when every ladder step failed; it lists each step.
type LadderError = actors.LadderError

// Ladder steps, in order; each is also a connection kind in PeerConnected and Peers.
const (
	StepTCPDirect  = actors.StepTCPDirect
	StepTCPUPnP    = actors.StepTCPUPnP
	StepTCPPunch   = actors.StepTCPPunch
	StepQUICDirect = actors.StepQUICDirect
	StepQUICPunch  = actors.StepQUICPunch
)

// StepCount counts the runs of a ladder step and the connections a kind made; see
// Service.LadderStats.
type StepCount = actors.StepCount

// NATInfo is what a node knows of the NAT in front of it (Service.NAT): the mapping
// behaviour and external endpoints from STUN, and the UPnP mappings.
type NATInfo = actors.NATInfo

// BootstrapEntry is one learned contact in the bootstrap cache, as listed by
// BootstrapEntries: endpoints, last direct success, failures since.
type BootstrapEntry = bootstrap.Entry
