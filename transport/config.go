package transport

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
	"github.com/crust-p2p/crust/transport/wire"
)

// Common is the configuration every transport shares.
type Common struct {
	// Identity is the node's key pair. Required.
	Identity *identity.Identity
	// Net opens sockets. Default: OSNet.
	Net Net
	// Clock tells the time. Default: SystemClock.
	Clock Clock
	// MaxFrameSize limits one frame's envelope in bytes. Default: wire.DefaultMaxFrameSize.
	MaxFrameSize int
	// HandshakeTimeout bounds connecting, the TLS handshake and the Hello exchange.
	// Default: 10 s.
	HandshakeTimeout time.Duration
	// Endpoints returns what Hello advertises as our endpoints. Default: the
	// transport's own listen endpoints.
	Endpoints func() []Endpoint
	// Allow, if set, is asked on the accepting side once TLS has proven the peer's
	// NodeID: a node it refuses gets a Goodbye{blocked} instead of our Hello, and the
	// handshake fails with ErrBlocked. Default: everyone is accepted.
	Allow func(identity.NodeID) bool
	// HelloExtra, if set, fills in the per-peer fields of our Hello (Stream, Resume)
	// once TLS has proven the peer's NodeID, just before the Hello is sent.
	HelloExtra func(peer identity.NodeID, h *wire.Hello)
	// Log receives debug logs. Default: slog.Default().
	Log *slog.Logger
}

func (c *Common) setDefaults() error {
	if c.Identity == nil {
		return errors.New("transport: Identity is required")
	}
	if c.Net == nil {
		c.Net = OSNet{}
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// bindAll binds each of addrs ("ip:port") with bind, which gets the network (proto
// with "4" or "6") and address and returns the address it bound. A port of 0 after
// the first bound address tries that address's port number first, so a node listens
// on one port number on IPv4 and IPv6. Addresses that fail are *ListenError.
func bindAll(addrs []string, proto string, bind func(network, addr string) (netip.AddrPort, error)) []error {
	var (
		errs []error
		port string
	)
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			errs = append(errs, &ListenError{Addr: a, Err: err})
			continue
		}
		network := proto + "4"
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
			network = proto + "6"
		}
		var ap netip.AddrPort
		err = errNotTried
		if p == "0" && port != "" {
			ap, err = bind(network, net.JoinHostPort(host, port))
		}
		if err != nil {
			ap, err = bind(network, a)
		}
		if err != nil {
			errs = append(errs, &ListenError{Addr: a, Err: err})
			continue
		}
		if port == "" {
			port = strconv.Itoa(int(ap.Port()))
		}
	}
	return errs
}

var errNotTried = errors.New("not tried")
