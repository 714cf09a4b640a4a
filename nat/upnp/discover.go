package upnp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/huin/goupnp/httpu"
	"github.com/huin/goupnp/ssdp"
)

// Search targets, best first: an IGD:2 also answers a search for IGD:1, but not
// every IGD:1 answers one for IGD:2.
var searchTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
}

// minSearch is the shortest SSDP search: ssdp.RawSearch needs an MX of at least 1 s.
const minSearch = 1100 * time.Millisecond

// discoverSSDP searches the LAN for gateways and returns the first usable one.
// ctx carries cfg.DiscoverTimeout.
func discoverSSDP(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.LocalAddr.IsValid() && !cfg.LocalAddr.Unmap().Is4() {
		return nil, fmt.Errorf("upnp: LocalAddr %v is not IPv4: SSDP search is IPv4 only", cfg.LocalAddr)
	}
	window := cfg.DiscoverTimeout * 2 / 3
	if window < minSearch {
		window = minSearch
	}
	if window > cfg.DiscoverTimeout {
		return nil, fmt.Errorf("upnp: DiscoverTimeout %v is too short for an SSDP search: give at least %v", cfg.DiscoverTimeout, minSearch)
	}
	searchCtx, cancel := context.WithTimeout(ctx, window)
	defer cancel()

	answers := make([][]*http.Response, len(searchTargets))
	errs := make([]error, len(searchTargets))
	var wg sync.WaitGroup
	for i, st := range searchTargets {
		wg.Go(func() { answers[i], errs[i] = cfg.search(searchCtx, cfg.LocalAddr.Unmap(), st) })
	}
	wg.Wait()

	// One attempt per location, best search target first.
	seen := map[string]bool{}
	var tried []error
	for _, rs := range answers {
		for _, r := range rs {
			loc, err := r.Location()
			if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") || seen[loc.String()] {
				continue
			}
			seen[loc.String()] = true
			g, err := gatewayAt(ctx, cfg, loc, r.Header.Get("BOOTID.UPNP.ORG"))
			if err == nil {
				return g, nil
			}
			tried = append(tried, fmt.Errorf("%s: %w", loc, explainTimeout(ctx, cfg.DiscoverTimeout, err)))
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(tried) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoGateway, errors.Join(tried...))
	}
	for _, err := range errs {
		if err != nil { // the searches share a cause: one is enough
			return nil, fmt.Errorf("%w: SSDP search failed: %w", ErrNoGateway, err)
		}
	}
	return nil, fmt.Errorf("%w: no answer to an SSDP search within %v", ErrNoGateway, window)
}

// searchSSDP sends an SSDP M-SEARCH for searchTarget from local, or from every
// up, multicast-capable, non-loopback IPv4 interface if local is not valid, and
// returns the answers that arrive before ctx ends.
func searchSSDP(ctx context.Context, local netip.Addr, searchTarget string) ([]*http.Response, error) {
	var addrs []string
	if local.IsValid() {
		addrs = []string{local.String()}
	} else {
		var err error
		if addrs, err = multicastIPv4Addrs(); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, errors.New("no up, multicast-capable IPv4 interface to search from")
		}
	}
	clients := make([]httpu.ClientInterfaceCtx, 0, len(addrs))
	closers := make([]io.Closer, 0, len(addrs))
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, a := range addrs {
		c, err := httpu.NewHTTPUClientAddr(a)
		if err != nil {
			return nil, fmt.Errorf("opening an SSDP socket on %s: %w", a, err)
		}
		clients = append(clients, c)
		closers = append(closers, c)
	}
	return ssdp.RawSearch(ctx, httpu.NewMultiClientCtx(clients), searchTarget, 2)
}

// multicastIPv4Addrs returns the IPv4 addresses of up, multicast-capable,
// non-loopback interfaces.
func multicastIPv4Addrs() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var addrs []string
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagMulticast == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		ifAddrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range ifAddrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				addrs = append(addrs, n.IP.String())
			}
		}
	}
	return addrs, nil
}
