package actors

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/crust-p2p/crust/transport"
)

// maxReflected bounds the reflected endpoints kept per protocol.
const maxReflected = 4

// reflections records how peers see us: the observed address in each peer's Hello
// (address reflection, STUN for free). The most recent distinct ones per protocol are
// kept, newest first, as hole-punch candidates for our Contact.
type reflections struct {
	mu     sync.Mutex
	byProt map[string][]netip.AddrPort
}

// note records the address the peer of c saw us at, and reports whether it is one
// not among those kept (our external address may have changed). An outbound TCP
// connection leaves from an ephemeral port nobody can reach, so only inbound TCP
// counts; QUIC always leaves from the listen socket.
func (r *reflections) note(c transport.Conn) (isNew bool) {
	h := c.PeerHello()
	if h == nil || (c.Proto() == "tcp" && c.Outbound()) {
		return false
	}
	ap, err := netip.ParseAddrPort(h.ObservedAddr)
	if err != nil || !ap.IsValid() || ap.Port() == 0 {
		return false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byProt == nil {
		r.byProt = make(map[string][]netip.AddrPort)
	}
	isNew = !slices.Contains(r.byProt[c.Proto()], ap)
	list := slices.DeleteFunc(r.byProt[c.Proto()], func(a netip.AddrPort) bool { return a == ap })
	list = append([]netip.AddrPort{ap}, list...)
	if len(list) > maxReflected {
		list = list[:maxReflected]
	}
	r.byProt[c.Proto()] = list
	return isNew
}

// endpoints returns the reflected endpoints, TCP then QUIC, newest first.
func (r *reflections) endpoints() []transport.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []transport.Endpoint
	for _, proto := range []string{"tcp", "quic"} {
		for _, ap := range r.byProt[proto] {
			out = append(out, transport.Endpoint{Proto: proto, Addr: ap})
		}
	}
	return out
}
