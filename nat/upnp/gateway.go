package upnp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Gateway is one connection service of an Internet Gateway Device: whichever of
// WANIPConnection:2, WANIPConnection:1 and WANPPPConnection:1 it offers, in that
// order of preference (among services of one kind, the first whose external address
// answers). Its methods are safe for concurrent use; each takes a ctx that bounds
// its one SOAP request.
type Gateway struct {
	serviceType  string
	svc          connectionService
	anyPort      anyPortService
	location     *url.URL
	friendlyName string
	localAddr    netip.Addr
	bootID       string
	externalIP   netip.Addr // as read during discovery
}

// ServiceType returns the URN of the service in use, one of
// [ServiceWANIPConnection2], [ServiceWANIPConnection1] and
// [ServiceWANPPPConnection1].
func (g *Gateway) ServiceType() string { return g.serviceType }

// RootURL returns the gateway's root description URL; pass it as [Config.RootURL]
// to find the same gateway again without SSDP.
func (g *Gateway) RootURL() string { return g.location.String() }

// LocalAddr returns our IPv4 address as the gateway sees it: the local address of
// the connection that fetched its description. It is the internal client of
// mappings asked for an unspecified internal address.
func (g *Gateway) LocalAddr() netip.Addr { return g.localAddr }

// BootID returns the BOOTID.UPNP.ORG header of the gateway's SSDP answer, which
// changes when the gateway restarts, or "" when it sent none or was not found by
// SSDP.
func (g *Gateway) BootID() string { return g.bootID }

// String describes the gateway for logs.
func (g *Gateway) String() string {
	name := g.friendlyName
	if name == "" {
		name = "gateway"
	}
	return fmt.Sprintf("%q at %s (%s)", name, g.location, strings.TrimPrefix(g.serviceType, "urn:schemas-upnp-org:service:"))
}

// Discover finds a gateway: the one at cfg.RootURL if set, else the first that
// answers an SSDP search for InternetGatewayDevice:2 or :1 and offers a connection
// service whose external address can be read. It gives up after
// cfg.DiscoverTimeout with an error that wraps [ErrNoGateway].
func Discover(ctx context.Context, cfg Config) (*Gateway, error) {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.DiscoverTimeout)
	defer cancel()
	if cfg.RootURL != "" {
		loc, err := url.Parse(cfg.RootURL)
		if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") || loc.Host == "" {
			return nil, fmt.Errorf("upnp: RootURL %q is not an http:// URL", cfg.RootURL)
		}
		g, err := gatewayAt(ctx, cfg, loc, "")
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoGateway, cfg.RootURL, explainTimeout(ctx, cfg.DiscoverTimeout, err))
		}
		return g, nil
	}
	return discoverSSDP(ctx, cfg)
}

// explainTimeout says so when err happened because ctx ran out.
func explainTimeout(ctx context.Context, timeout time.Duration, err error) error {
	switch {
	case ctx.Err() == nil:
		return err
	case errors.Is(err, ctx.Err()):
		return fmt.Errorf("no answer within %v: %w", timeout, err)
	}
	return fmt.Errorf("no answer within %v: %w (%v)", timeout, ctx.Err(), err)
}

// gatewayAt fetches the root description at loc and returns the best connection
// service whose external address answers.
func gatewayAt(ctx context.Context, cfg Config, loc *url.URL, bootID string) (*Gateway, error) {
	root, local, err := fetchRootDescription(ctx, cfg.HTTPClient, loc)
	if err != nil {
		return nil, fmt.Errorf("fetching root description: %w", err)
	}
	if !local.Is4() {
		return nil, fmt.Errorf("our address toward the gateway is %v, not IPv4", local)
	}
	choices, err := chooseServices(root, loc, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, c := range choices {
		g := &Gateway{
			serviceType:  c.serviceType,
			svc:          c.svc,
			anyPort:      c.anyPort,
			location:     loc,
			friendlyName: root.Device.FriendlyName,
			localAddr:    local,
			bootID:       bootID,
		}
		ip, err := g.ExternalIP(ctx)
		if err == nil {
			g.externalIP = ip
			return g, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// ExternalIP returns the gateway's external IPv4 address (GetExternalIPAddress).
// An empty or 0.0.0.0 answer is [ErrNoExternalAddress]. A private address means
// another NAT sits beyond this one: mappings will not be reachable from the
// internet.
func (g *Gateway) ExternalIP(ctx context.Context) (netip.Addr, error) {
	s, err := g.svc.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, g.wrap(ctx, "GetExternalIPAddress", "reading the external address", err)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, fmt.Errorf("reading the external address from %s: %w", g, ErrNoExternalAddress)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reading the external address from %s: answer %q is not an IP address", g, truncate(s))
	}
	ip = ip.Unmap()
	if !ip.Is4() || ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("reading the external address from %s: answer %v: %w", g, ip, ErrNoExternalAddress)
	}
	return ip, nil
}

// AddMapping maps external port external of protocol proto ("tcp" or "udp") to
// internal, for lease (0: permanent; whole seconds, rounded up). An unspecified
// internal address (0.0.0.0 or ::) stands for [Gateway.LocalAddr]. Mapping a port
// again for the same internal client renews it. Errors the gateway answers are
// *[ActionError]; a port held by another client matches [ErrConflict], and a
// gateway that takes only lease 0 matches [ErrOnlyPermanentLeases].
func (g *Gateway) AddMapping(ctx context.Context, proto string, internal netip.AddrPort, external uint16, lease time.Duration, desc string) error {
	p, in, err := g.mappingArgs(proto, internal, external)
	if err != nil {
		return err
	}
	err = g.svc.AddPortMappingCtx(ctx, "", external, p, in.Port(), in.Addr().String(), true, desc, leaseSeconds(lease))
	return g.wrap(ctx, "AddPortMapping", fmt.Sprintf("mapping %s %d to %v", p, external, in), err)
}

// addAnyMapping asks a WANIPConnection:2 gateway to map a free external port, near
// external if it can, and returns the port it chose. ok is false if the service
// has no such action.
func (g *Gateway) addAnyMapping(ctx context.Context, proto string, internal netip.AddrPort, external uint16, lease time.Duration, desc string) (port uint16, ok bool, err error) {
	if g.anyPort == nil {
		return 0, false, nil
	}
	p, in, err := g.mappingArgs(proto, internal, external)
	if err != nil {
		return 0, true, err
	}
	port, err = g.anyPort.AddAnyPortMappingCtx(ctx, "", external, p, in.Port(), in.Addr().String(), true, desc, leaseSeconds(lease))
	if err != nil {
		return 0, true, g.wrap(ctx, "AddAnyPortMapping", fmt.Sprintf("mapping any %s port to %v", p, in), err)
	}
	if port == 0 {
		return 0, true, fmt.Errorf("mapping any %s port to %v via %s: the gateway reserved port 0", p, in, g)
	}
	return port, true, nil
}

// DeleteMapping deletes the mapping of external port external of protocol proto.
// A mapping the gateway does not have (UPnP error 714) is not an error.
func (g *Gateway) DeleteMapping(ctx context.Context, proto string, external uint16) error {
	p, err := soapProtocol(proto)
	if err != nil {
		return err
	}
	err = g.svc.DeletePortMappingCtx(ctx, "", external, p)
	if ae := actionError("DeletePortMapping", err); ae != nil && ae.Code == codeNoSuchEntry {
		return nil
	}
	return g.wrap(ctx, "DeletePortMapping", fmt.Sprintf("deleting mapping %s %d", p, external), err)
}

// GetMapping reads the mapping of external port external of protocol proto
// (GetSpecificPortMappingEntry). ok is false if the gateway has no such mapping or
// has it disabled.
func (g *Gateway) GetMapping(ctx context.Context, proto string, external uint16) (internal netip.AddrPort, ok bool, err error) {
	p, err := soapProtocol(proto)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	port, client, enabled, _, _, err := g.svc.GetSpecificPortMappingEntryCtx(ctx, "", external, p)
	if err != nil {
		if ae := actionError("GetSpecificPortMappingEntry", err); ae != nil && ae.Code == codeNoSuchEntry {
			return netip.AddrPort{}, false, nil
		}
		return netip.AddrPort{}, false, g.wrap(ctx, "GetSpecificPortMappingEntry", fmt.Sprintf("reading mapping %s %d", p, external), err)
	}
	ip, perr := netip.ParseAddr(strings.TrimSpace(client))
	if perr != nil {
		return netip.AddrPort{}, false, fmt.Errorf("reading mapping %s %d from %s: internal client %q is not an IP address", p, external, g, truncate(client))
	}
	if !enabled {
		return netip.AddrPort{}, false, nil
	}
	return netip.AddrPortFrom(ip.Unmap(), port), true, nil
}

// mappingArgs checks and converts the arguments of a mapping.
func (g *Gateway) mappingArgs(proto string, internal netip.AddrPort, external uint16) (string, netip.AddrPort, error) {
	p, err := soapProtocol(proto)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	in, err := g.internalAddr(internal)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	if external == 0 {
		return "", netip.AddrPort{}, errors.New("upnp: external port 0: give a port")
	}
	return p, in, nil
}

// internalAddr resolves an unspecified internal address to LocalAddr and checks
// that the result is an IPv4 address and port (IGD port mappings are IPv4 only).
func (g *Gateway) internalAddr(internal netip.AddrPort) (netip.AddrPort, error) {
	ip := internal.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = g.localAddr
	}
	if !ip.Is4() {
		return netip.AddrPort{}, fmt.Errorf("upnp: internal address %v is not IPv4: UPnP maps IPv4 only", internal)
	}
	if internal.Port() == 0 {
		return netip.AddrPort{}, errors.New("upnp: internal port 0: give the listener's port")
	}
	return netip.AddrPortFrom(ip, internal.Port()), nil
}

// wrap adds what was being done to an error from goupnp, turning SOAP faults into
// *ActionError and saying so when the gateway did not answer in time. It returns
// nil for a nil err.
func (g *Gateway) wrap(ctx context.Context, action, doing string, err error) error {
	if err == nil {
		return nil
	}
	if ae := actionError(action, err); ae != nil {
		return fmt.Errorf("%s via %s: %w", doing, g, ae)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s via %s: the gateway did not answer %s: %w (%v)", doing, g, action, ctx.Err(), err)
	}
	return fmt.Errorf("%s via %s: %s: %w", doing, g, action, err)
}

// soapProtocol returns the protocol name UPnP uses for proto.
func soapProtocol(proto string) (string, error) {
	switch strings.ToLower(proto) {
	case "tcp":
		return "TCP", nil
	case "udp":
		return "UDP", nil
	}
	return "", fmt.Errorf("upnp: protocol %q: want \"tcp\" or \"udp\"", proto)
}

// leaseSeconds converts a lease to whole seconds, rounding up; 0 or less is 0
// (permanent).
func leaseSeconds(lease time.Duration) uint32 {
	if lease <= 0 {
		return 0
	}
	s := (lease + time.Second - 1) / time.Second
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// truncate shortens a gateway's string for an error message.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
