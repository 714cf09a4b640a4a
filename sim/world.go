package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/sim/vnet"
)

// world is what every scenario stands on: a virtual network whose links share one
// latency, the two STUN servers its nodes ask, the UPnP gateways of its sites, and
// the settings of those nodes.
type world struct {
	net      *vnet.Network
	link     vnet.Link
	servers  []*STUNServer
	stuns    []string // the servers' addresses, as crust.Config wants them
	gateways []*IGD

	protocols []string
	step      time.Duration
	log       *slog.Logger
	onMessage func(crust.Message)
}

// newWorld builds the network and starts the STUN servers (at stunAddrs, each
// naming the other as its alternate); close stops them.
func newWorld(cfg vnet.Config, link vnet.Link, protocols []string, step time.Duration, log *slog.Logger) (*world, error) {
	w := &world{net: vnet.New(cfg), link: link, protocols: protocols, step: step, log: log}
	for i, a := range stunAddrs {
		h, err := w.host(a)
		if err != nil {
			w.close()
			return nil, err
		}
		srv, err := StartSTUN(h, netip.AddrPortFrom(stunAddrs[1-i], STUNPort))
		if err != nil {
			w.close()
			return nil, err
		}
		w.servers = append(w.servers, srv)
		w.stuns = append(w.stuns, srv.Addr().String())
	}
	return w, nil
}

// close stops the servers and gateways (the nodes are their starters' to close).
func (w *world) close() {
	for _, s := range w.servers {
		s.Close()
	}
	for _, g := range w.gateways {
		g.Close()
	}
}

// host adds a host on the internet at addr.
func (w *world) host(addr netip.Addr) (*vnet.Host, error) {
	h, err := w.net.AddHost(addr)
	if err == nil {
		h.SetLink(w.link)
	}
	return h, err
}

// site is a place nodes sit: hosts on the internet, or on the LAN of a router.
type site struct {
	hosts []*vnet.Host
	// gateway is the root description URL of the UPnP gateway on the site's LAN
	// (crust.Config.UPnPRootURL), "" if it has none.
	gateway string
}

// carrierLANAddr is a home router's address on its carrier-grade NAT's LAN, in RFC
// 6598's shared address space; every carrier NAT has a LAN of its own.
var carrierLANAddr = netip.MustParseAddr("100.64.0.2")

// site adds n hosts of kind k: on the internet after wan if public; else behind a
// router at wan (or a home router behind a carrier NAT at wan), from lan on (a
// firewall translates nothing, so its hosts have addresses of the internet, after
// wan). A UPnP kind's gateway sits at the LAN's .1 address.
func (w *world) site(k Kind, wan, lan netip.Addr, n int) (site, error) {
	var st site
	if k.NAT == nil {
		for range n {
			wan = wan.Next()
			h, err := w.host(wan)
			if err != nil {
				return site{}, err
			}
			st.hosts = append(st.hosts, h)
		}
		return st, nil
	}
	r, err := w.router(k, wan)
	if err != nil {
		return site{}, err
	}
	addr := lan
	if k.NAT.FirewallOnly {
		addr = wan.Next()
	}
	for range n {
		h, err := r.AddHost(addr)
		if err != nil {
			return site{}, err
		}
		h.SetLink(w.link)
		st.hosts = append(st.hosts, h)
		addr = addr.Next()
	}
	if k.UPnP {
		if st.gateway, err = w.gateway(r, lan); err != nil {
			return site{}, err
		}
	}
	return st, nil
}

// gateway starts a UPnP gateway for r on a host at the .1 address of lan's /24 and
// returns its root description URL; close stops it.
func (w *world) gateway(r *vnet.Router, lan netip.Addr) (string, error) {
	a := lan.As4()
	h, err := r.AddHost(netip.AddrFrom4([4]byte{a[0], a[1], a[2], 1}))
	if err != nil {
		return "", fmt.Errorf("adding the UPnP gateway's host: %w", err)
	}
	h.SetLink(w.link)
	g, err := StartIGD(h, r)
	if err != nil {
		return "", err
	}
	w.gateways = append(w.gateways, g)
	return g.RootURL(), nil
}

// router adds the router (or routers) of kind k at wan and returns the one whose LAN
// the hosts go on.
func (w *world) router(k Kind, wan netip.Addr) (*vnet.Router, error) {
	if k.Carrier == nil {
		r, err := w.net.AddNAT(wan, *k.NAT)
		if err == nil {
			r.SetLink(w.link)
		}
		return r, err
	}
	carrier, home, err := w.net.AddCGNAT(wan, carrierLANAddr, *k.Carrier, *k.NAT)
	if err != nil {
		return nil, err
	}
	carrier.SetLink(w.link)
	home.SetLink(w.link)
	return home, nil
}

// nodeOpts are a node's settings beyond its world's.
type nodeOpts struct {
	// contacts are the nodes it knows at start.
	contacts []crust.Contact
	// beacon runs the LAN beacon (broadcast on its LAN; routers do not pass it on).
	beacon bool
	// gateway is the root description URL of the UPnP gateway on its LAN, where it
	// maps its listen ports; "" for none.
	gateway string
}

// start starts a node on h, listening on nodePort.
func (w *world) start(h *vnet.Host, name string, o nodeOpts) (*crust.Service, error) {
	var beacons []netip.Addr
	if o.beacon {
		beacons = []netip.Addr{netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	}
	s, err := crust.New(crust.Config{
		BeaconAddrs: beacons,
		ListenAddrs: []string{netip.AddrPortFrom(h.Addr(), nodePort).String()},
		Protocols:   w.protocols,
		StunServers: w.stuns,
		Contacts:    o.contacts,
		StepTimeout: w.step,
		UPnP:        o.gateway != "",
		UPnPRootURL: o.gateway,
		Net:         Net{Host: h},
		Log:         w.log.With("node", name),
		OnMessage:   w.onMessage,
	})
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go drain(s)
	return s, nil
}

// ready waits until s has asked STUN, is connected to one of ids and, if mapping
// (it has a UPnP gateway), has every listen port mapped: its contact is then
// complete.
func ready(ctx context.Context, s *crust.Service, mapping bool, ids ...crust.NodeID) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		nat := s.NAT()
		checked := !nat.Checked.IsZero()
		connected := slices.ContainsFunc(s.Peers(), func(p crust.PeerInfo) bool { return slices.Contains(ids, p.ID) })
		mapped := !mapping || len(nat.UPnP) >= len(s.Endpoints())
		if checked && connected && mapped {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: node %s not ready (STUN checked %v, connected to R or a bootstrap node %v, UPnP mappings %v): %w",
				s.ID().Short(), checked, connected, nat.UPnP, ctx.Err())
		case <-tick.C:
		}
	}
}

// drain reads s's events until it closes, so none of them waits on us.
func drain(s *crust.Service) {
	for range s.Events() {
	}
}

// peerKind is how s is connected to id, "" if it is not.
func peerKind(s *crust.Service, id crust.NodeID) string {
	for _, p := range s.Peers() {
		if p.ID == id {
			return p.Kind
		}
	}
	return ""
}
