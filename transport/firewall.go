package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv6"
)

// firewallPunchWait is how long TCP.OpenFirewall lets its SYN travel before it
// abandons the attempt: the SYN left at once, and a Time Exceeded usually returns
// sooner.
const firewallPunchWait = 500 * time.Millisecond

// OpenFirewall sends one TCP SYN toward raddr from our listener's port with an IPv4
// TTL or IPv6 hop limit of hops, then abandons the attempt. Chosen to die past our own
// stateful firewall but before the peer's (see HopsTo), the SYN makes our firewall
// expect raddr, so the peer's connection to our listener then gets in (SocketSynergy).
//
// It returns within about half a second, or when ctx ends. A Time Exceeded or no
// answer at all is success; a SYN that reaches a listener is success too (that
// connection is dropped with a reset). A reset in answer is ErrFirewallPunchReset: the
// hop limit was too high. Other errors mean no SYN left: no listener of raddr's
// family, a socket that could not be bound or connected (the 4-tuple is in use), or a
// Net without HopLimitDialer.
func (t *TCP) OpenFirewall(ctx context.Context, raddr netip.AddrPort, hops int) error {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if err := checkHops(hops); err != nil {
		return fmt.Errorf("opening our firewall toward %s: %w", raddr, err)
	}
	hd, ok := t.cfg.Net.(HopLimitDialer)
	if !ok {
		return fmt.Errorf("opening our firewall toward %s: %w: the Net cannot set a hop limit", raddr, errors.ErrUnsupported)
	}
	network, local, err := t.listenAddrFor(raddr)
	if err != nil {
		return fmt.Errorf("opening our firewall toward %s: %w", raddr, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("opening our firewall toward %s: %w", raddr, err)
	}
	dctx, cancel := context.WithTimeout(ctx, firewallPunchWait)
	defer cancel()
	conn, err := hd.DialFromHopLimit(dctx, network, local, raddr.String(), hops)
	switch {
	case err == nil:
		// The SYN reached a listener. Reset rather than close, so that no TIME_WAIT
		// holds the 4-tuple that the punched connection will need.
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
		return nil
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("opening our firewall toward %s with %d hops: %w", raddr, hops, ErrFirewallPunchReset)
	case synSent(dctx, err):
		return nil
	}
	return fmt.Errorf("opening our firewall toward %s with %d hops: %w", raddr, hops, err)
}

// synSent reports whether a hop-limited connect that failed with err had sent its SYN:
// an ICMP error came back, or the wait ran out (the connect was under way).
func synSent(ctx context.Context, err error) bool {
	if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()
}

// OpenFirewall sends one punch datagram (see Punch) to raddr from our QUIC socket of
// raddr's family with an IPv4 TTL or IPv6 hop limit of hops, chosen to pass our own
// stateful firewall and die before the peer's, so our firewall lets the peer's packets
// from raddr in. Only that datagram carries the limit; QUIC traffic on the socket
// keeps the default. IPv4 needs Linux (or a socket that is a HopLimitWriter).
func (q *QUIC) OpenFirewall(raddr netip.AddrPort, hops int) error {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if err := q.openFirewall(raddr, hops); err != nil {
		return fmt.Errorf("opening our firewall toward %s with %d hops: %w", raddr, hops, err)
	}
	return nil
}

func (q *QUIC) openFirewall(raddr netip.AddrPort, hops int) error {
	if err := checkHops(hops); err != nil {
		return err
	}
	s, err := q.socketFor(raddr.Addr())
	if err != nil {
		return err
	}
	switch pc := s.pc.(type) {
	case HopLimitWriter:
		_, err = pc.WriteToHopLimit(q.punch, raddr, hops)
		return err
	case *net.UDPConn:
		oob, err := hopLimitControlMessage(raddr.Addr().Is6(), hops)
		if err != nil {
			return err
		}
		_, _, err = pc.WriteMsgUDPAddrPort(q.punch, oob, raddr)
		return err
	}
	return fmt.Errorf("%w: a %T cannot send with a hop limit", errors.ErrUnsupported, s.pc)
}

// hopLimitControlMessage returns the ancillary data that sends one datagram with an
// IPv4 TTL or IPv6 hop limit of hops.
func hopLimitControlMessage(ip6 bool, hops int) ([]byte, error) {
	if !ip6 {
		return ttlControlMessage(hops)
	}
	oob := (&ipv6.ControlMessage{HopLimit: hops}).Marshal()
	if len(oob) == 0 {
		return nil, fmt.Errorf("%w: no IPV6_HOPLIMIT control message here", errors.ErrUnsupported)
	}
	return oob, nil
}

// checkHops rejects a hop limit an IP header cannot carry.
func checkHops(hops int) error {
	if hops < 1 || hops > 255 {
		return fmt.Errorf("hop limit %d, want 1 to 255", hops)
	}
	return nil
}
