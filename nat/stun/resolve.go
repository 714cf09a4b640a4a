package stun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// DefaultPort is the STUN port (RFC 5389 §9), used by [ResolveServer] when the
// server is named without one.
const DefaultPort = 3478

// Outcome is one server's part in [Resolve]: its Result, or the error that
// stopped it.
type Outcome struct {
	// Server is the server as given to Resolve.
	Server string
	// Result is the server's answer; zero if Err is set.
	Result Result
	// Err is why the server gave no answer, nil if it did.
	Err error
}

// Resolve asks every server at once with query and waits for all of them (bound
// query's time with ctx). It returns each server's outcome, in the order given,
// and the mapped address that the servers which answered agree on.
//
// One server failing is not an error as long as another answered. The error wraps
// [ErrDisagree] when the answers differ (the outcomes tell who said what; see
// [Classify]), [ErrNoServers] for an empty list, and every server's error when none
// answered.
func Resolve(ctx context.Context, servers []string, query func(ctx context.Context, server string) (Result, error)) ([]Outcome, netip.AddrPort, error) {
	if len(servers) == 0 {
		return nil, netip.AddrPort{}, ErrNoServers
	}
	outcomes := make([]Outcome, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			r, err := query(ctx, s)
			outcomes[i] = Outcome{Server: s, Result: r, Err: err}
		})
	}
	wg.Wait()

	var agreed netip.AddrPort
	var errs []error
	var disagree bool
	for _, o := range outcomes {
		switch {
		case o.Err != nil:
			errs = append(errs, o.Err)
		case !agreed.IsValid():
			agreed = o.Result.Mapped
		case !sameEndpoint(agreed, o.Result.Mapped):
			disagree = true
		}
	}
	switch {
	case disagree:
		var said []string
		for _, o := range outcomes {
			if o.Err == nil {
				said = append(said, fmt.Sprintf("%s saw %s", o.Server, o.Result.Mapped))
			}
		}
		return outcomes, netip.AddrPort{}, fmt.Errorf("stun: %w: %s", ErrDisagree, strings.Join(said, ", "))
	case !agreed.IsValid():
		return outcomes, netip.AddrPort{}, fmt.Errorf("stun: none of %d servers answered: %w", len(servers), errors.Join(errs...))
	}
	return outcomes, agreed, nil
}

// ResolveServer turns "host:port" (a DNS name or an address literal; the port
// defaults to 3478) into an address. network is "udp4" or "udp6" (or "tcp4",
// "tcp6") to require that family, or "udp" ("tcp") to take the first address
// DNS gives.
func ResolveServer(ctx context.Context, server string, network string) (netip.AddrPort, error) {
	return resolveServer(ctx, server, network, net.DefaultResolver.LookupNetIP)
}

// resolveServer is ResolveServer with the DNS lookup injected, for tests.
func resolveServer(ctx context.Context, server, network string, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) (netip.AddrPort, error) {
	var ipNetwork string
	switch network {
	case "udp", "tcp":
		ipNetwork = "ip"
	case "udp4", "tcp4":
		ipNetwork = "ip4"
	case "udp6", "tcp6":
		ipNetwork = "ip6"
	default:
		return netip.AddrPort{}, fmt.Errorf("resolving STUN server %q: unknown network %q (want udp, udp4, udp6, tcp, tcp4 or tcp6)", server, network)
	}
	host, port, err := splitServer(server)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolving STUN server %q: %w", server, err)
	}

	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		if addrs, err = lookup(ctx, ipNetwork, host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("resolving STUN server %q: %w", server, err)
		}
	}
	for _, a := range addrs {
		a = a.Unmap()
		if ipNetwork == "ip4" && !a.Is4() || ipNetwork == "ip6" && !a.Is6() {
			continue
		}
		return netip.AddrPortFrom(a, port), nil
	}
	family := map[string]string{"ip": "IP", "ip4": "IPv4", "ip6": "IPv6"}[ipNetwork]
	return netip.AddrPort{}, fmt.Errorf("resolving STUN server %q: no %s address", server, family)
}

// splitServer splits "host:port", "host", "[v6]:port" or a bare IPv6 literal,
// defaulting the port to DefaultPort.
func splitServer(server string) (string, uint16, error) {
	if server == "" {
		return "", 0, errors.New("empty server name")
	}
	if a, err := netip.ParseAddr(server); err == nil {
		return a.String(), DefaultPort, nil
	}
	if !strings.Contains(server, ":") {
		return server, DefaultPort, nil
	}
	host, portStr, err := net.SplitHostPort(server)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, uint16(port), nil
}
