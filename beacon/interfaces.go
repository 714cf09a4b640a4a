package beacon

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// InterfaceLister lists the host's interface addresses with their prefixes, as
// net.InterfaceAddrs does (transport.Net has this method).
type InterfaceLister interface {
	InterfaceAddrs() ([]net.Addr, error)
}

type osInterfaces struct{}

func (osInterfaces) InterfaceAddrs() ([]net.Addr, error) { return net.InterfaceAddrs() }

// prefixes returns the interface prefixes that il lists, IPv4-mapped ones unmapped.
func prefixes(il InterfaceLister) ([]netip.Prefix, error) {
	addrs, err := il.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, bits := ipn.Mask.Size()
		if bits == 0 {
			continue // non-canonical mask
		}
		if ip.Is4In6() {
			ip = ip.Unmap()
			if bits == 128 {
				ones -= 96
			}
		}
		if ones < 0 || ones > ip.BitLen() {
			continue
		}
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out, nil
}

// DirectedBroadcasts returns the directed broadcast address of each IPv4 prefix that
// il lists (192.168.1.255 for 192.168.1.7/24), without duplicates. A limited
// broadcast (255.255.255.255) leaves by one interface only; these reach every
// attached LAN. Prefixes of /31 and /32 have no broadcast address and are skipped.
func DirectedBroadcasts(il InterfaceLister) ([]netip.Addr, error) {
	ps, err := prefixes(il)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, p := range ps {
		if b, ok := directedBroadcast(p); ok && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out, nil
}

// directedBroadcast returns the last address of an IPv4 prefix of at most /30.
func directedBroadcast(p netip.Prefix) (netip.Addr, bool) {
	if !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, false
	}
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// LocalSubnets returns a Config.Local that accepts loopback and IPv6 link-local
// addresses and any address inside one of the prefixes il lists now. The list is
// read once: a caller whose interfaces change builds a new one.
func LocalSubnets(il InterfaceLister) (func(netip.Addr) bool, error) {
	ps, err := prefixes(il)
	if err != nil {
		return nil, err
	}
	return func(a netip.Addr) bool {
		a = a.Unmap()
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			return true
		}
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}, nil
}

// LANAddrs returns where a node on a real LAN beacons: the limited broadcast
// 255.255.255.255, each IPv4 interface's directed broadcast (a limited broadcast
// leaves by one interface only), and the IPv6 group DefaultGroup. A nil lister means
// the host's interfaces. Use it in a daemon only: it sends on the machine's real
// interfaces.
func LANAddrs(il InterfaceLister) ([]netip.Addr, error) {
	if il == nil {
		il = osInterfaces{}
	}
	directed, err := DirectedBroadcasts(il)
	if err != nil {
		return nil, err
	}
	out := []netip.Addr{netip.AddrFrom4([4]byte{255, 255, 255, 255})}
	out = append(out, directed...)
	return append(out, DefaultGroup), nil
}
