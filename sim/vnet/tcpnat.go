package vnet

import (
	"fmt"
	"net/netip"
	"time"
)

// UnsolicitedSYN is what a NAT or firewall does with an inbound SYN that no mapping
// and filter let in (NATConfig.TCPUnsolicited).
type UnsolicitedSYN int

const (
	// DropSYN drops the SYN silently, as RFC 5382 REQ-4a allows and most home
	// routers do: the dialler only sees its connect time out.
	DropSYN UnsolicitedSYN = iota
	// RejectSYN answers the SYN with an RST from the address it was sent to, as some
	// routers and firewalls do: the dialler's connect fails at once with
	// ECONNREFUSED, and the RST also ends the dialler's own NAT's state for the flow.
	RejectSYN
)

// String returns "drop" or "reject".
func (u UnsolicitedSYN) String() string {
	switch u {
	case DropSYN:
		return "drop"
	case RejectSYN:
		return "reject"
	}
	return fmt.Sprintf("UnsolicitedSYN(%d)", int(u))
}

// TCPEstablishedTimeout is how long a NAT keeps a TCP mapping with an established
// connection after the connection's last segment: the 2 hours 4 minutes RFC 5382
// REQ-5 asks for at least. A NAT whose MappingTimeout is longer uses that.
const TCPEstablishedTimeout = 2*time.Hour + 4*time.Minute

// tcpFlow is what a NAT knows of one TCP connection through a mapping, from the
// segments it has translated.
//
// The model, after RFC 5382: a connection is established once a SYN has passed in
// each direction (a plain handshake or a simultaneous open), and over once an RST
// has passed or a FIN has passed each way. While a mapping has an established
// connection it lives TCPEstablishedTimeout after the last segment; otherwise
// (connecting, closed) it has the NAT's MappingTimeout, as a UDP mapping.
type tcpFlow struct {
	synOut, synIn bool
	finOut, finIn bool
}

func (f *tcpFlow) established() bool { return f.synOut && f.synIn }

// trackTCP follows the connection to or from remote through TCP mapping m after a
// segment with flags passed (outbound or inbound), and sets the mapping's expiry;
// refresh says whether the segment refreshes a mapping that has no established
// connection (outbound segments do; inbound ones with InboundRefresh).
func (r *Router) trackTCP(m *mapping, remote netip.AddrPort, flags segFlags, outbound, refresh bool, now time.Time) {
	f := m.flows[remote]
	ended := false
	switch {
	case flags&flagRST != 0:
		if f != nil {
			delete(m.flows, remote)
			ended = true
		}
	case flags&flagSYN != 0:
		if f == nil {
			f = &tcpFlow{}
			m.flows[remote] = f
		}
		if outbound {
			f.synOut = true
		} else {
			f.synIn = true
		}
	case flags&flagFIN != 0 && f != nil:
		if outbound {
			f.finOut = true
		} else {
			f.finIn = true
		}
		if f.finOut && f.finIn {
			delete(m.flows, remote)
			ended = true
		}
	}

	if r.cfg.MappingTimeout < 0 {
		return // never expires
	}
	for _, f := range m.flows {
		if f.established() {
			m.expires = now.Add(max(TCPEstablishedTimeout, r.cfg.MappingTimeout))
			return
		}
	}
	if refresh || ended {
		m.expires = now.Add(r.cfg.MappingTimeout)
	}
}

// awaitsSYN reports whether inbound segment p is a SYN from an endpoint the inside
// socket of m is connecting to: such a SYN passes whatever the filter (the
// simultaneous open of a TCP hole punch; RFC 5382 section 4's "connection
// initiation" from both sides). With the filters modelled here the inside's own
// SYN has already put the endpoint in the filter, so this only states the rule.
func (r *Router) awaitsSYN(m *mapping, p packet) bool {
	if p.flags&flagSYN == 0 {
		return false
	}
	f := m.flows[p.src]
	return f != nil && f.synOut
}

// refuse drops inbound p, which no mapping or filter let in. A TCP SYN is
// unsolicited: dropped silently or, with RejectSYN, answered with an RST from the
// address and port it was sent to.
func (r *Router) refuse(p packet, reason DropReason) {
	if p.proto != protoTCP || p.flags != flagSYN {
		r.net.drop(r.String(), p, reason)
		return
	}
	if r.cfg.TCPUnsolicited != RejectSYN {
		r.net.drop(r.String(), p, DropUnsolicitedSYN)
		return
	}
	r.net.drop(r.String(), p, DropRejectedSYN)
	rst := packet{src: p.dst, dst: p.src, proto: protoTCP, flags: flagRST}
	r.net.stats.SegmentsSent++
	r.net.trace(EventSend, r.String(), rst, "")
	r.net.up(r, r.seg, rst)
}
