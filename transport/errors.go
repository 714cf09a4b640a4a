package transport

import (
	"errors"
	"fmt"
)

// ErrVersion is returned when the peer speaks another protocol version.
var ErrVersion = errors.New("peer speaks an incompatible protocol version")

// ErrBadHello is returned when the peer's first frame is not a valid Hello.
var ErrBadHello = errors.New("peer sent an invalid Hello")

// ErrBlocked is the accepting side's handshake error for a node that Common.Allow
// refuses.
var ErrBlocked = errors.New("peer blocked by our whitelist or blacklist")

// ErrRefused is the dialling side's handshake error when the peer answers with a
// Goodbye instead of a Hello (it blocks us, say); the error carries its reason.
var ErrRefused = errors.New("peer refused the connection")

// ErrBadPunchPreamble is returned when the peer of a hole-punched TCP connection sends
// a punch preamble we cannot use (wrong magic, version or role), or none at all: it may
// be an older crust, or not crust.
var ErrBadPunchPreamble = errors.New("peer sent an invalid hole-punch preamble")

// ErrFirewallPunchReset is returned by TCP.OpenFirewall when its hop-limited SYN drew
// a reset: it went past the last firewall to the peer (or to a firewall that rejects),
// and the reset may have closed the state it was meant to open. Try fewer hops.
var ErrFirewallPunchReset = errors.New("the firewall-opening SYN was answered with a reset; the hop limit is too high")

// ErrNoHopAnswer is returned by HopsTo when no router and not the destination
// answered any probe: ICMP is filtered on the way, or the destination is unreachable.
var ErrNoHopAnswer = errors.New("no router or destination answered the hop probes")

// ListenError is a listen address that could not be bound.
type ListenError struct {
	Addr string
	Err  error
}

// Error names the address and the cause.
func (e *ListenError) Error() string { return fmt.Sprintf("listening on %s: %v", e.Addr, e.Err) }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }
