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
// latency, the two STUN servers its nodes ask, and the settings of those nodes.
type world struct {
	net     *vnet.Network
	link    vnet.Link
	servers []*STUNServer
	stuns   []string // the servers' addresses, as crust.Config wants them

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

func (w *world) close() {
	for _, s := range w.servers {
		s.Close()
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

// site adds n hosts of kind k: on the internet after wan if public; else behind a
// router at wan, from lan on (a firewall translates nothing, so its hosts have
// addresses of the internet, after wan).
func (w *world) site(k Kind, wan, lan netip.Addr, n int) ([]*vnet.Host, error) {
	var hosts []*vnet.Host
	if k.NAT == nil {
		for range n {
			wan = wan.Next()
			h, err := w.host(wan)
			if err != nil {
				return nil, err
			}
			hosts = append(hosts, h)
		}
		return hosts, nil
	}
	r, err := w.net.AddNAT(wan, *k.NAT)
	if err != nil {
		return nil, err
	}
	r.SetLink(w.link)
	addr := lan
	if k.NAT.FirewallOnly {
		addr = wan.Next()
	}
	for range n {
		h, err := r.AddHost(addr)
		if err != nil {
			return nil, err
		}
		h.SetLink(w.link)
		hosts = append(hosts, h)
		addr = addr.Next()
	}
	return hosts, nil
}

// start starts a node on h, listening on nodePort, that knows contacts; with beacon,
// it runs the LAN beacon (broadcast on its LAN; routers do not pass it on).
func (w *world) start(h *vnet.Host, name string, contacts []crust.Contact, beacon bool) (*crust.Service, error) {
	var beacons []netip.Addr
	if beacon {
		beacons = []netip.Addr{netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	}
	s, err := crust.New(crust.Config{
		BeaconAddrs: beacons,
		ListenAddrs: []string{netip.AddrPortFrom(h.Addr(), nodePort).String()},
		Protocols:   w.protocols,
		StunServers: w.stuns,
		Contacts:    contacts,
		StepTimeout: w.step,
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

// ready waits until s has asked STUN and is connected to one of ids.
func ready(ctx context.Context, s *crust.Service, ids ...crust.NodeID) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		checked := !s.NAT().Checked.IsZero()
		connected := slices.ContainsFunc(s.Peers(), func(p crust.PeerInfo) bool { return slices.Contains(ids, p.ID) })
		if checked && connected {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: node %s not ready (STUN checked %v, connected to R or a bootstrap node %v): %w", s.ID().Short(), checked, connected, ctx.Err())
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
