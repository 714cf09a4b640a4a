package upnp

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Defaults for [Config].
const (
	DefaultLease           = time.Hour
	DefaultDiscoverTimeout = 3 * time.Second
	DefaultRequestTimeout  = 5 * time.Second
	DefaultCheckInterval   = time.Minute
	DefaultDescription     = "crust"

	// minLease is the shortest lease asked for: leases are whole seconds, and a
	// mapping renewed at half its lease needs some slack.
	minLease = 2 * time.Second
	// minBackoff and maxBackoff bound the wait before re-discovering a gateway that
	// stopped answering; the wait doubles after every failed attempt.
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
	// minWait keeps the Mapper's loop from spinning if a deadline is already past.
	minWait = 100 * time.Millisecond
)

// Config says how to find the gateway and how to map ports. The zero value discovers
// a gateway by SSDP on every IPv4 interface and asks for one-hour leases.
type Config struct {
	// RootURL, if set, is the gateway's root description URL, e.g.
	// "http://192.168.1.1:2189/rootDesc.xml" (miniupnpd). No SSDP search is sent.
	// Default "": search the LAN with SSDP.
	RootURL string

	// LocalAddr, if valid, binds the SSDP search to this local IPv4 address, so that
	// it leaves through one interface only. Default: search from every up,
	// multicast-capable, non-loopback IPv4 interface.
	LocalAddr netip.Addr

	// Lease is the lease duration asked for each mapping. Leases are whole seconds;
	// values below 2 s are raised to 2 s. The Mapper renews a mapping at half its
	// lease. A gateway that answers UPnP error 725 (OnlyPermanentLeasesSupported) gets
	// permanent mappings (lease 0), which the Mapper deletes on Close. Default 1 h.
	Lease time.Duration

	// Description is the mapping description the gateway shows in its mapping list,
	// e.g. "crust 3f9a1c". Default "crust".
	Description string

	// DiscoverTimeout bounds one Discover: the SSDP search (about two thirds of it;
	// must then be at least 1.1 s), fetching the root description and the first
	// GetExternalIPAddress. Default 3 s.
	DiscoverTimeout time.Duration

	// RequestTimeout bounds each SOAP request the Mapper sends. Default 5 s.
	RequestTimeout time.Duration

	// CheckInterval is how often the Mapper reads the external address and checks
	// with GetSpecificPortMappingEntry that the gateway still has our mappings (a
	// restarted gateway forgets them). It is shortened to half the lease if that is
	// shorter. Default 1 min.
	CheckInterval time.Duration

	// Log receives what the Mapper does. Default: discard.
	Log *slog.Logger

	// HTTPClient sends the requests to the gateway. Its Transport is wrapped to
	// bound answers to 1 MiB. Default: a client with no proxy (the gateway is on
	// the LAN), no keep-alive (no connection outlives a request) and a 30 s
	// timeout per request.
	HTTPClient *http.Client

	// Now returns the current time; a seam for tests. Default time.Now.
	Now func() time.Time

	// After waits for a duration, like time.After, which is the default; a seam for
	// tests. The Mapper has at most one After pending at a time.
	After func(time.Duration) <-chan time.Time

	// search sends one SSDP search; a seam for tests, which must not multicast.
	// Default: searchSSDP.
	search func(ctx context.Context, local netip.Addr, searchTarget string) ([]*http.Response, error)
}

// defaultSearch is the SSDP search used when Config.search is nil. Tests replace it
// with one that refuses, so that no test can multicast by mistake.
var defaultSearch = searchSSDP

func (c Config) withDefaults() Config {
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Lease < minLease {
		c.Lease = minLease
	}
	if c.Description == "" {
		c.Description = DefaultDescription
	}
	if c.DiscoverTimeout <= 0 {
		c.DiscoverTimeout = DefaultDiscoverTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.HTTPClient = newHTTPClient(c.HTTPClient)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.search == nil {
		c.search = defaultSearch
	}
	return c
}
