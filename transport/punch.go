package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
)

// The punch preamble goes before TLS on every hole-punched TCP connection, because a
// TCP simultaneous open leaves both ends with a connect()ed socket and no notion of
// who is client. It is fixed-size:
//
//	"CRUSTPUNCH"  10 bytes  magic; the 'C' tells our listener it is no TLS ClientHello (0x16)
//	version        1 byte   punchVersion
//	role           1 byte   punchRoleDialer or punchRoleAcceptor
//	node ID       32 bytes  the sender's NodeID: only a tie-breaker, TLS proves it
//
// The side that dialled (PunchDial) sends role dialer and reads the peer's preamble.
// A listener that accepted the connection answers role acceptor and is TLS server. If
// both dialled (simultaneous open), the larger NodeID is TLS client.
const (
	punchMagic        = "CRUSTPUNCH"
	punchVersion      = 1
	punchRoleDialer   = 1
	punchRoleAcceptor = 2
	punchPreambleSize = len(punchMagic) + 2 + identity.NodeIDSize
)

// Timing of PunchDial's connect attempts: each is cut off after punchAttemptTimeout so
// that a SYN goes out again at least that often (an unanswered connect would wait for
// the kernel's slower retransmissions), and a refused or unreachable one is retried
// after a backoff that doubles from punchBackoffMin to punchBackoffMax.
const (
	punchAttemptTimeout = time.Second
	punchBackoffMin     = 100 * time.Millisecond
	punchBackoffMax     = time.Second
	// punchQuickRetries is how many resets in a row are retried at once, with no
	// backoff. A reset this early means our SYN reached the peer's router before the
	// peer's own SYN left it, and that reset also closed our router's state for the
	// flow: the peer's SYN, due any moment, then meets a closed door, unless our next
	// SYN has opened it again first.
	punchQuickRetries = 32
)

// A punch datagram (QUIC.Punch) is quicPunchHeader and the sender's 32-byte NodeID.
// Its first byte has the two high bits clear, so quic-go hands it to the non-QUIC
// reader, and it lacks STUN's magic cookie (bytes 4 to 8), so STUN code ignores it.
// The NodeID tells apart the peers behind one NAT address, which all punch from it;
// it is a claim, not a proof: only the TLS handshake that follows proves who is there.
const (
	quicPunchHeader     = "\x00" + punchMagic + "\x02"
	quicPunchPacketSize = len(quicPunchHeader) + identity.NodeIDSize
)

// punchPacket returns the punch datagram of node id.
func punchPacket(id identity.NodeID) []byte {
	return append([]byte(quicPunchHeader), id[:]...)
}

// parsePunchPacket returns the sender's NodeID if b is a punch datagram.
func parsePunchPacket(b []byte) (identity.NodeID, bool) {
	var id identity.NodeID
	if len(b) != quicPunchPacketSize || string(b[:len(quicPunchHeader)]) != quicPunchHeader {
		return id, false
	}
	copy(id[:], b[len(quicPunchHeader):])
	return id, !id.IsZero()
}

// PunchDial connects to raddr, the peer's mapped endpoint, from the port of our
// listener of raddr's family, while the peer does the same toward us (TCP simultaneous
// open) or its listener accepts; then proves that the peer is want, as Dial does.
//
// It tries to connect until ctx ends: each attempt is cut off after a second so the
// SYN is sent again, and one that is refused (a router or host that answers stray SYNs
// with a reset), unreachable (ICMP errors, such as Time Exceeded from a hop-limited
// punch) or whose 4-tuple is still in use is retried after a backoff of 100 ms doubling
// to 1 s; up to 32 resets in a row are retried at once (see punchQuickRetries). Once
// connected, the handshake is bounded by ctx and the handshake timeout, and is not
// retried.
//
// Before TLS both ends exchange a 44-byte preamble ("CRUSTPUNCH", version, role,
// NodeID) that settles the TLS roles: a peer whose listener accepted is TLS server; if
// both dialled (simultaneous open), the larger NodeID is TLS client. The NodeID there
// only breaks the tie: TLS proves want whichever role we take, and a different node is
// a *identity.WrongPeerError. The returned Conn's Outbound is true on the TLS-client
// end and false on the other, so both ends agree which side initiated.
//
// If the peer's SYN reaches our listener before we connect, that connection arrives
// through the listener (an Incoming whose Handshake makes us TLS server) and holds the
// 4-tuple, so PunchDial cannot connect until ctx ends: run the accept loop alongside
// and cancel ctx once either path has a connection to the peer.
func (t *TCP) PunchDial(ctx context.Context, raddr netip.AddrPort, want identity.NodeID) (Conn, error) {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	network, local, err := t.listenAddrFor(raddr)
	if err != nil {
		return nil, fmt.Errorf("punching %s: %w", raddr, err)
	}
	backoff := punchBackoffMin
	quick := 0
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			if lastErr == nil {
				return nil, fmt.Errorf("punching %s: %w", raddr, err)
			}
			return nil, fmt.Errorf("punching %s: %w; last attempt: %w", raddr, err, lastErr)
		}
		attempt, cancel := context.WithTimeout(ctx, punchAttemptTimeout)
		raw, err := t.cfg.Net.DialFrom(attempt, network, local, raddr.String())
		timedOut := attempt.Err() != nil
		cancel()
		if err == nil {
			c, err := t.handshake(ctx, raw, &want, true)
			if err != nil {
				return nil, fmt.Errorf("handshake with %s punched at %s: %w", want.Short(), raddr, err)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			// Cut off by ctx: the attempt before says more about why it failed.
			if lastErr == nil {
				lastErr = err
			}
			continue
		}
		lastErr = err
		t.cfg.Log.Debug("punch: connect failed; retrying", "to", raddr, "err", err, "timed_out", timedOut)
		if !timedOut && !punchRetryable(err) {
			return nil, fmt.Errorf("punching %s: %w", raddr, err)
		}
		if timedOut {
			continue // the attempt already waited; send the next SYN at once
		}
		if isReset(err) && quick < punchQuickRetries {
			quick++
			continue
		}
		quick = 0
		wait := backoff
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE) {
			// Our previous connection on this 4-tuple is still closing: moments.
			wait = punchBackoffMin
		} else {
			backoff = min(2*backoff, punchBackoffMax)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
}

// isReset reports whether err is a connect answered with a reset.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// punchRetryable reports whether a failed connect may work if tried again: the peer
// has not punched its side yet (reset, ICMP unreachable or time exceeded), or the
// 4-tuple is still held by an earlier connection.
func punchRetryable(err error) bool {
	for _, e := range []error{
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ETIMEDOUT,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.EADDRNOTAVAIL, syscall.EADDRINUSE,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// settlePunchRoles runs the dialling side's preamble exchange on a punched connection
// and reports whether we are TLS client, and the stream TLS runs on.
//
// The node with the larger NodeID (of us and want) is TLS client whatever the peer's
// role: an acceptor is server, and after a simultaneous open the larger is client.
// So it does not wait for the peer's preamble: its ClientHello follows its own at
// once, and the peer's preamble is read (and checked) from the returned stream before
// TLS reads anything else. The smaller node reads the peer's preamble first; after a
// simultaneous open the ClientHello is right behind it. Why the larger: crust's
// one-connection-per-pair rule makes the smaller node decide when a connection goes
// live, and the TLS server finishes its handshake half a round trip after the client,
// with the client's Hello in hand: so the smaller node can go live then, and both
// ends are connected about 0.5 RTT sooner than the other way round.
func (t *TCP) settlePunchRoles(raw net.Conn, want identity.NodeID) (client bool, stream net.Conn, err error) {
	self := t.cfg.Identity.ID()
	if _, err := raw.Write(appendPunchPreamble(nil, punchRoleDialer, self)); err != nil {
		return false, nil, fmt.Errorf("sending the punch preamble: %w", err)
	}
	if want.Less(self) {
		return true, &preambleConn{Conn: raw, self: self, want: want}, nil
	}
	client, err = t.readPeerPreamble(raw)
	return client, raw, err
}

// preambleConn reads and checks the peer's punch preamble before the first byte TLS
// reads.
type preambleConn struct {
	net.Conn
	self identity.NodeID
	want identity.NodeID // a preamble naming another node ends it here
	done bool
	err  error
}

func (c *preambleConn) Read(b []byte) (int, error) {
	if !c.done {
		c.done = true
		var buf [punchPreambleSize]byte
		if _, err := io.ReadFull(c.Conn, buf[:]); err != nil {
			c.err = fmt.Errorf("reading the peer's punch preamble: %w", err)
		} else if _, peer, err := parsePunchPreamble(buf[:]); err != nil {
			c.err = err
		} else if peer == c.self {
			c.err = fmt.Errorf("%w: the peer has our own node ID (a connection to ourselves?)", ErrBadPunchPreamble)
		} else if peer != c.want {
			// Our guess that we are TLS client rested on want: another node (which
			// TLS would also refuse) may be client too.
			c.err = &identity.WrongPeerError{Want: c.want, Got: peer}
		}
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// readPeerPreamble reads the peer's preamble and reports whether we are TLS client.
func (t *TCP) readPeerPreamble(raw net.Conn) (client bool, err error) {
	self := t.cfg.Identity.ID()
	var buf [punchPreambleSize]byte
	if _, err := io.ReadFull(raw, buf[:]); err != nil {
		return false, fmt.Errorf("reading the peer's punch preamble: %w", err)
	}
	role, peer, err := parsePunchPreamble(buf[:])
	if err != nil {
		return false, err
	}
	if role == punchRoleAcceptor {
		return true, nil
	}
	// Both dialled: a simultaneous open. Both ends compare the same two IDs.
	switch self.Compare(peer) {
	case 1:
		return true, nil
	case -1:
		return false, nil
	}
	return false, fmt.Errorf("%w: the peer has our own node ID (a connection to ourselves?)", ErrBadPunchPreamble)
}

// answerPunchPreamble looks at the first byte of an accepted connection. A TLS
// ClientHello is left for TLS: the returned conn replays the byte. A punch preamble
// (a peer's PunchDial reached our listener) is answered with ours, role acceptor, and
// the node it names is returned, for TLS to prove.
func (t *TCP) answerPunchPreamble(raw net.Conn) (net.Conn, *identity.NodeID, error) {
	var buf [punchPreambleSize]byte
	if _, err := io.ReadFull(raw, buf[:1]); err != nil {
		return nil, nil, fmt.Errorf("reading the first byte: %w", err)
	}
	if buf[0] != punchMagic[0] {
		return &prefixConn{Conn: raw, prefix: buf[:1]}, nil, nil
	}
	if _, err := io.ReadFull(raw, buf[1:]); err != nil {
		return nil, nil, fmt.Errorf("reading the punch preamble: %w", err)
	}
	role, peer, err := parsePunchPreamble(buf[:])
	if err != nil {
		return nil, nil, err
	}
	if role != punchRoleDialer {
		return nil, nil, fmt.Errorf("%w: role %d from a connection we accepted, want dialer (%d)", ErrBadPunchPreamble, role, punchRoleDialer)
	}
	if _, err := raw.Write(appendPunchPreamble(nil, punchRoleAcceptor, t.cfg.Identity.ID())); err != nil {
		return nil, nil, fmt.Errorf("sending the punch preamble: %w", err)
	}
	return raw, &peer, nil
}

// appendPunchPreamble appends the preamble for role and node id to b.
func appendPunchPreamble(b []byte, role byte, id identity.NodeID) []byte {
	b = append(b, punchMagic...)
	b = append(b, punchVersion, role)
	return append(b, id[:]...)
}

// parsePunchPreamble parses a preamble of exactly punchPreambleSize bytes.
func parsePunchPreamble(b []byte) (role byte, id identity.NodeID, err error) {
	if len(b) != punchPreambleSize {
		return 0, id, fmt.Errorf("%w: %d bytes, want %d", ErrBadPunchPreamble, len(b), punchPreambleSize)
	}
	if !bytes.Equal(b[:len(punchMagic)], []byte(punchMagic)) {
		return 0, id, fmt.Errorf("%w: starts with %q, want %q", ErrBadPunchPreamble, b[:len(punchMagic)], punchMagic)
	}
	b = b[len(punchMagic):]
	if b[0] != punchVersion {
		return 0, id, fmt.Errorf("%w: version %d, we speak %d", ErrBadPunchPreamble, b[0], punchVersion)
	}
	role = b[1]
	if role != punchRoleDialer && role != punchRoleAcceptor {
		return 0, id, fmt.Errorf("%w: unknown role %d", ErrBadPunchPreamble, role)
	}
	copy(id[:], b[2:])
	if id.IsZero() {
		return 0, id, fmt.Errorf("%w: zero node ID", ErrBadPunchPreamble)
	}
	return role, id, nil
}

// prefixConn replays bytes already read from the connection before reading more.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// Punch sends one punch datagram to raddr from our QUIC socket of raddr's family, so
// that our NAT and firewall let the peer's packets from raddr in; the peer does the
// same toward us, then one side dials. The datagram is a short fixed header and our
// NodeID, which QUIC and STUN ignore; a crust QUIC transport that receives it drops
// it before OnPacket and reports it to OnPunch.
func (q *QUIC) Punch(raddr netip.AddrPort) error {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if _, err := q.WriteTo(q.punch, raddr); err != nil {
		return fmt.Errorf("sending a punch packet to %s: %w", raddr, err)
	}
	return nil
}
