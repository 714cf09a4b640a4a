package nat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/crust-p2p/crust/nat/stun"
)

// Prober learns the node's external endpoints and its NAT's mapping behaviour from
// STUN servers. Its zero value asks nothing; set Servers and at least one protocol.
type Prober struct {
	// Servers are STUN servers, "host:port" (the port defaults to 3478).
	Servers []string
	// UDP runs Bindings over the QUIC transport's own socket; nil: no UDP probe.
	UDP *stun.UDP
	// UDPPort is that socket's port, to tell "no NAT" from a translated port.
	UDPPort uint16
	// DialTCP opens a plain TCP connection from the TCP listen port; nil: no TCP
	// probe.
	DialTCP func(ctx context.Context, raddr netip.AddrPort) (net.Conn, error)
	// TCPPort is the TCP listen port.
	TCPPort uint16
	// LocalAddrs returns the host's own addresses: a mapped address among them, on
	// our own port, means no NAT. Default: none known.
	LocalAddrs func() []netip.Addr
}

// Mapping is what STUN said about one protocol's listen socket.
type Mapping struct {
	// Mapped is the external address the servers agree on; zero if none answered or
	// they disagree.
	Mapped netip.AddrPort
	// Behavior classifies the NAT's mapping for this socket.
	Behavior stun.Behavior
	// Results are the answers, the servers' alternate addresses included.
	Results []stun.Result
	// Errors say why servers did not answer, one line each, naming the server.
	Errors []string
}

// Hint is the address to give peers for this socket: Mapped if the servers agree;
// with an endpoint-dependent NAT, whose mappings no peer can reach, the highest port
// the servers saw instead (the newest, from a NAT that hands ports out in sequence):
// it tells peers our external address, and a base to predict the port our next
// flow gets (both used by hole punching). Zero if nothing answered.
func (m Mapping) Hint() netip.AddrPort {
	if m.Mapped.IsValid() || m.Behavior != stun.EndpointDependent {
		return m.Mapped
	}
	var hint netip.AddrPort
	for _, r := range m.Results {
		if r.Mapped.IsValid() && (!hint.IsValid() || r.Mapped.Port() > hint.Port()) {
			hint = r.Mapped
		}
	}
	return hint
}

// Report is the outcome of one Check.
type Report struct {
	// UDP is the QUIC socket's mapping; TCP the TCP listen port's.
	UDP, TCP Mapping
	// At is when the check ended.
	At time.Time
}

// Behavior is the NAT's behaviour as far as the report tells: the UDP socket's if
// known, else the TCP port's.
func (r Report) Behavior() stun.Behavior {
	if r.UDP.Behavior != stun.Unknown && r.UDP.Behavior != "" {
		return r.UDP.Behavior
	}
	if r.TCP.Behavior != "" {
		return r.TCP.Behavior
	}
	return stun.Unknown
}

// Check asks every server over each configured protocol at once, and the alternate
// address (RFC 5780 OTHER-ADDRESS) of the first server that names one, so one such
// server is enough to tell an endpoint-independent mapping from an
// endpoint-dependent one.
func (p *Prober) Check(ctx context.Context) Report {
	var r Report
	var wg sync.WaitGroup
	if p.UDP != nil {
		wg.Go(func() { r.UDP = p.probe(ctx, "udp", p.UDPPort, p.queryUDP) })
	}
	if p.DialTCP != nil {
		wg.Go(func() { r.TCP = p.probe(ctx, "tcp", p.TCPPort, p.queryTCP) })
	}
	wg.Wait()
	r.At = time.Now()
	return r
}

func (p *Prober) queryUDP(ctx context.Context, server netip.AddrPort) (stun.Result, error) {
	return p.UDP.Binding(ctx, server)
}

func (p *Prober) queryTCP(ctx context.Context, server netip.AddrPort) (stun.Result, error) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return p.DialTCP(ctx, server) }
	return stun.BindingTCP(ctx, dial, server.String())
}

// probe runs one protocol's Bindings and classifies the answers. The first server
// to answer with an alternate address has that address asked at once, in parallel
// with the servers still pending.
func (p *Prober) probe(ctx context.Context, network string, port uint16, query func(context.Context, netip.AddrPort) (stun.Result, error)) Mapping {
	var (
		m       Mapping
		altOnce sync.Once
		alt     *stun.Outcome
	)
	ask := func(ctx context.Context, server string) (stun.Result, error) {
		addr, err := stun.ResolveServer(ctx, server, network)
		if err != nil {
			return stun.Result{}, err
		}
		res, err := query(ctx, addr)
		res.Server = server
		if err == nil && res.Other.IsValid() && res.Other != addr {
			altOnce.Do(func() {
				r, err := query(ctx, res.Other)
				r.Server = res.Other.String()
				alt = &stun.Outcome{Server: r.Server, Result: r, Err: err}
			})
		}
		return res, err
	}
	outcomes, agreed, _ := stun.Resolve(ctx, p.Servers, ask)
	if alt != nil {
		outcomes = append(outcomes, *alt)
	}
	for _, o := range outcomes {
		if o.Err != nil {
			m.Errors = append(m.Errors, fmt.Sprintf("%s %s: %v", network, o.Server, o.Err))
			continue
		}
		m.Results = append(m.Results, o.Result)
	}
	m.Mapped = agreed
	m.Behavior = stun.Classify(p.local(m.Results, port), m.Results...)
	if m.Behavior == stun.EndpointDependent {
		m.Mapped = netip.AddrPort{} // no one address: a peer cannot use any of them
	}
	return m
}

// local returns our socket's address as Classify wants it: the mapped address if it
// is one of the host's own on our own port (no NAT), else the zero value.
func (p *Prober) local(results []stun.Result, port uint16) netip.AddrPort {
	if p.LocalAddrs == nil || len(results) == 0 {
		return netip.AddrPort{}
	}
	mapped := results[0].Mapped
	if mapped.Port() == port && slices.Contains(p.LocalAddrs(), mapped.Addr()) {
		return mapped
	}
	return netip.AddrPort{}
}
