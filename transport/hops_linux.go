package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Hop probes, as traceroute sends them: UDP to hopProbePort+ttl-1, a port range
// nothing should listen on, so the destination answers Port Unreachable. The port
// tells which probe an ICMP error is about, since Linux reports the original
// destination of each error and every ICMP error quotes the UDP header.
const (
	hopProbePort = 33434
	hopProbeWait = 2 * time.Second // for answers, after the probes are sent
	hopProbeMin  = 50 * time.Millisecond
)

// ICMP types that end or cut short a probe's path.
const (
	icmp4Unreachable  = 3
	icmp4TimeExceeded = 11
	icmp6Unreachable  = 1
	icmp6TimeExceeded = 3
)

// sizeofSockExtendedErr is the size of struct sock_extended_err.
const sizeofSockExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))

// hopAnswer is what came back for one probe.
type hopAnswer int

const (
	hopNone        hopAnswer = iota
	hopExceeded              // Time Exceeded from a router on the way
	hopRouterEnd             // a router on the way said the destination is unreachable
	hopDestination           // the destination itself answered
)

// HopsTo estimates how many routers lie between us and raddr's address: the number of
// routers before the destination, so loopback and a host on our link are 0 and the hop
// limit that reaches raddr is the result + 1. A firewall punch (OpenFirewall) that must
// pass our firewall but stop before the peer's needs fewer hops than that.
//
// Like traceroute, it sends one UDP probe for each hop limit 1..max (to high ports of
// raddr's address; raddr's port is not used) and reads the ICMP errors that come back
// (IP_RECVERR). If the destination answers, the result is the routers before it; if a
// router reports it unreachable, the routers up to that one; if only routers answer
// (the destination drops probes silently, as behind a NAT or firewall), the last router
// that answered. It waits for answers up to 2 s or until ctx ends. No answer at all is
// ErrNoHopAnswer. Linux only; elsewhere the error is errors.ErrUnsupported.
func HopsTo(ctx context.Context, raddr netip.AddrPort, maxHops int) (int, error) {
	dst := raddr.Addr().Unmap().WithZone("")
	hops, err := hopsTo(ctx, dst, maxHops)
	if err != nil {
		return 0, fmt.Errorf("counting hops to %s: %w", dst, err)
	}
	return hops, nil
}

func hopsTo(ctx context.Context, dst netip.Addr, maxHops int) (int, error) {
	if err := checkHops(maxHops); err != nil {
		return 0, err
	}
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() {
		return 0, fmt.Errorf("%s is no unicast address", dst)
	}
	network, level, recvErr, hopOpt := "udp4", unix.IPPROTO_IP, unix.IP_RECVERR, unix.IP_TTL
	if dst.Is6() {
		network, level, recvErr, hopOpt = "udp6", unix.IPPROTO_IPV6, unix.IPV6_RECVERR, unix.IPV6_UNICAST_HOPS
	}
	pc, err := net.ListenUDP(network, nil)
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	rc, err := pc.SyscallConn()
	if err != nil {
		return 0, err
	}
	setopt := func(opt, value int) error {
		var optErr error
		if err := rc.Control(func(fd uintptr) { optErr = unix.SetsockoptInt(int(fd), level, opt, value) }); err != nil {
			return err
		}
		return optErr
	}
	if err := setopt(recvErr, 1); err != nil {
		return 0, fmt.Errorf("asking for ICMP errors: %w", err)
	}

	sent := time.Now()
	for ttl := 1; ttl <= maxHops; ttl++ {
		if err := setopt(hopOpt, ttl); err != nil {
			return 0, fmt.Errorf("setting the hop limit to %d: %w", ttl, err)
		}
		if err := sendHopProbe(pc, netip.AddrPortFrom(dst, uint16(hopProbePort+ttl-1))); err != nil {
			return 0, err
		}
	}

	deadline := sent.Add(hopProbeWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pc.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	answers := make([]hopAnswer, maxHops+1) // by hop limit
	for !hopsSettled(answers) {
		ttl, answer, err := readHopAnswer(rc, dst)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break // the wait is over, or ctx ended
		}
		if err != nil {
			return 0, err
		}
		if ttl < 1 || ttl > maxHops || answers[ttl] != hopNone {
			continue
		}
		answers[ttl] = answer
		if answer >= hopRouterEnd {
			// Answers to smaller hop limits, if any, should not be much later than
			// this one: wait about as long again for them.
			grace := max(time.Since(sent), hopProbeMin)
			if d := time.Now().Add(grace); d.Before(deadline) {
				deadline = d
				pc.SetReadDeadline(deadline)
			}
		}
	}
	if hops, ok := hopsFrom(answers); ok {
		return hops, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return 0, ErrNoHopAnswer
}

// sendHopProbe sends one probe. An ICMP error already in for an earlier probe fails
// the next send once (the socket's pending error); that is no reason to stop.
func sendHopProbe(pc *net.UDPConn, to netip.AddrPort) error {
	var err error
	for range 3 {
		if _, err = pc.WriteToUDPAddrPort([]byte("crust hop probe"), to); err == nil {
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EHOSTUNREACH) &&
			!errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTDOWN) {
			break
		}
	}
	return fmt.Errorf("sending a probe to %s: %w", to, err)
}

// hopsSettled reports whether the answers are conclusive: some probe reached the end
// of its path and every smaller hop limit has been answered.
func hopsSettled(answers []hopAnswer) bool {
	for _, a := range answers[1:] {
		switch a {
		case hopNone:
			return false
		case hopRouterEnd, hopDestination:
			return true
		}
	}
	return false
}

// hopsFrom turns the answers by hop limit into the number of routers before the
// destination, if any answer says.
func hopsFrom(answers []hopAnswer) (int, bool) {
	lastRouter := 0
	for ttl, a := range answers {
		switch a {
		case hopDestination:
			return ttl - 1, true
		case hopRouterEnd:
			return ttl, true
		case hopExceeded:
			lastRouter = ttl
		}
	}
	return lastRouter, lastRouter > 0
}

// readHopAnswer waits for the next ICMP error on the socket's error queue and returns
// the hop limit of the probe it is about and what it says. Errors about other traffic
// come back as hop limit 0.
func readHopAnswer(rc syscall.RawConn, dst netip.Addr) (ttl int, answer hopAnswer, err error) {
	var (
		buf  [64]byte
		oob  [512]byte
		oobn int
		from unix.Sockaddr
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, hopNone, err
	}
	if rerr != nil {
		return 0, hopNone, fmt.Errorf("reading ICMP errors: %w", rerr)
	}
	var port int
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		if netip.AddrFrom4(sa.Addr) != dst {
			return 0, hopNone, nil
		}
		port = sa.Port
	case *unix.SockaddrInet6:
		if netip.AddrFrom16(sa.Addr) != dst {
			return 0, hopNone, nil
		}
		port = sa.Port
	default:
		return 0, hopNone, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, hopNone, nil
	}
	for _, m := range msgs {
		if !(m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) &&
			!(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			continue
		}
		origin, icmpType, offender, ok := parseExtendedErr(m.Data)
		if !ok {
			continue
		}
		var exceeded, unreachable bool
		switch origin {
		case unix.SO_EE_ORIGIN_ICMP:
			exceeded, unreachable = icmpType == icmp4TimeExceeded, icmpType == icmp4Unreachable
		case unix.SO_EE_ORIGIN_ICMP6:
			exceeded, unreachable = icmpType == icmp6TimeExceeded, icmpType == icmp6Unreachable
		}
		ttl := port - hopProbePort + 1
		switch {
		case exceeded:
			return ttl, hopExceeded, nil
		case unreachable && offender == dst:
			return ttl, hopDestination, nil
		case unreachable:
			return ttl, hopRouterEnd, nil
		}
	}
	return 0, hopNone, nil
}

// parseExtendedErr reads a struct sock_extended_err and the offender's address (the
// sender of the ICMP error) that follows it.
func parseExtendedErr(b []byte) (origin, icmpType uint8, offender netip.Addr, ok bool) {
	if len(b) < sizeofSockExtendedErr {
		return 0, 0, netip.Addr{}, false
	}
	origin, icmpType = b[4], b[5]
	sa := b[sizeofSockExtendedErr:]
	if len(sa) >= 2 {
		switch binary.NativeEndian.Uint16(sa) {
		case unix.AF_INET:
			if len(sa) >= 8 {
				offender = netip.AddrFrom4([4]byte(sa[4:8]))
			}
		case unix.AF_INET6:
			if len(sa) >= 24 {
				offender = netip.AddrFrom16([16]byte(sa[8:24]))
			}
		}
	}
	return origin, icmpType, offender, true
}
