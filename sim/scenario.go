package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/sim/vnet"
)

// Kind is a place a node can sit in the simulation: on the internet (NAT nil) or
// behind a router of the NAT kind, itself maybe behind a carrier-grade NAT.
type Kind struct {
	// Name names the kind in tables: "public", "full-cone", ...
	Name string
	// NAT is the router's configuration; nil for a public host.
	NAT *vnet.NATConfig
	// Carrier, if set, is a carrier-grade NAT between the router (then the home
	// router) and the internet: the hosts are behind both (vnet.Network.AddCGNAT).
	Carrier *vnet.NATConfig
	// UPnP runs a UPnP gateway (IGD) for the router on its LAN, and the nodes there
	// map their listen ports on it (crust.Config.UPnP).
	UPnP bool
}

func natKind(name string, cfg vnet.NATConfig) Kind { return Kind{Name: name, NAT: &cfg} }

// Kinds are the matrix's kinds: a public host, the classic NATs (RFC 4787 mapping
// and filtering), a firewall without NAT, a home router with a UPnP gateway (a
// port-restricted cone whose nodes map their ports), and carrier-grade double NAT (a
// port-restricted home router behind a port-restricted carrier NAT).
var Kinds = []Kind{
	{Name: "public"},
	natKind("full-cone", vnet.FullCone()),
	natKind("restricted", vnet.RestrictedCone()),
	natKind("port-restricted", vnet.PortRestrictedCone()),
	natKind("symmetric", vnet.Symmetric()),
	natKind("firewall", vnet.Firewall()),
	{Name: "upnp", NAT: ptr(vnet.PortRestrictedCone()), UPnP: true},
	{Name: "cgnat", NAT: ptr(vnet.PortRestrictedCone()), Carrier: ptr(vnet.PortRestrictedCone())},
}

func ptr[T any](v T) *T { return &v }

// KindByName returns the kind named name.
func KindByName(name string) (Kind, bool) {
	i := slices.IndexFunc(Kinds, func(k Kind) bool { return k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return Kinds[i], true
}

// Outcome is how one pair ended: the connection's kind (the ladder step that made
// it), or the error, and how long Connect took.
type Outcome struct {
	Kind string
	Err  error
	Took time.Duration
}

// Pair is one cell of the matrix: node A behind kind A connects to node B behind
// kind B, both knowing a rendezvous node R on the internet and two STUN servers.
type Pair struct {
	A, B      Kind
	Protocols []string
	// Seed seeds the network's random choices (ports of random NATs).
	Seed uint64
	// Latency is every link's one-way delay. Default: 1 ms.
	Latency time.Duration
	// StepTimeout bounds each ladder step. Default: 3 s (a loaded machine running
	// the race detector needs the margin).
	StepTimeout time.Duration
	// Log receives the nodes' logs. Default: none.
	Log *slog.Logger
	// Trace, if set, is told of every datagram and segment step in the network
	// (sent, translated, delivered, dropped with the reason), with the network
	// locked: it must not call into the network.
	Trace func(vnet.Event)
}

// The plan of a pair's network (addresses exist only inside the simulation).
var (
	rendezvousAddr = netip.MustParseAddr("203.0.113.10")
	stunAddrs      = [2]netip.Addr{netip.MustParseAddr("203.0.113.20"), netip.MustParseAddr("203.0.113.21")}
	siteAddrs      = [2]netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.101")}
	lanAddrs       = [2]netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.2.10")}
)

// nodePort is where every simulated node listens (TCP and QUIC).
const nodePort = 4000

// Run builds the pair's network, starts the three nodes, has A connect to B by B's
// contact and reports how that went; everything is closed before it returns.
func (p Pair) Run(ctx context.Context) (Outcome, error) {
	if p.Latency <= 0 {
		p.Latency = time.Millisecond
	}
	if p.StepTimeout <= 0 {
		p.StepTimeout = 3 * time.Second
	}
	if p.Log == nil {
		p.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w, err := newWorld(vnet.Config{Seed: p.Seed, QueueLen: 1024, Trace: p.Trace}, vnet.Link{Latency: p.Latency}, p.Protocols, p.StepTimeout, p.Log)
	if err != nil {
		return Outcome{}, err
	}
	defer w.close()
	rh, err := w.host(rendezvousAddr)
	if err != nil {
		return Outcome{}, err
	}
	r, err := w.start(rh, "R", nodeOpts{})
	if err != nil {
		return Outcome{}, err
	}
	defer r.Close()
	kinds := [2]Kind{p.A, p.B}
	var nodes [2]*crust.Service
	for i, k := range kinds {
		st, err := w.site(k, siteAddrs[i], lanAddrs[i], 1)
		if err != nil {
			return Outcome{}, err
		}
		s, err := w.start(st.hosts[0], string(rune('A'+i)), nodeOpts{contacts: []crust.Contact{r.Contact()}, gateway: st.gateway})
		if err != nil {
			return Outcome{}, err
		}
		defer s.Close()
		nodes[i] = s
	}
	a, b := nodes[0], nodes[1]
	for i, s := range nodes {
		if err := ready(ctx, s, kinds[i].UPnP, r.ID()); err != nil {
			return Outcome{}, err
		}
	}
	begin := time.Now()
	err = a.Connect(ctx, b.Contact())
	out := Outcome{Err: err, Took: time.Since(begin)}
	if err == nil {
		if out.Kind = peerKind(a, b.ID()); out.Kind == "" {
			return Outcome{}, errors.New("sim: Connect returned but A does not list B")
		}
	}
	return out, nil
}
