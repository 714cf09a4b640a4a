package upnp

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
)

// connectionService is what this package needs of a WANIPConnection:1,
// WANIPConnection:2 or WANPPPConnection:1 client: the generated goupnp clients all
// have these methods with the same signatures.
type connectionService interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) (
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32, err error)
}

// anyPortService is the WANIPConnection:2 action that lets the gateway pick a free
// external port.
type anyPortService interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) (uint16, error)
}

var (
	_ connectionService = (*internetgateway2.WANIPConnection2)(nil)
	_ connectionService = (*internetgateway2.WANIPConnection1)(nil)
	_ connectionService = (*internetgateway2.WANPPPConnection1)(nil)
	_ anyPortService    = (*internetgateway2.WANIPConnection2)(nil)
)

// Service types a Gateway can use, in order of preference.
const (
	ServiceWANIPConnection2  = internetgateway2.URN_WANIPConnection_2
	ServiceWANIPConnection1  = internetgateway2.URN_WANIPConnection_1
	ServiceWANPPPConnection1 = internetgateway2.URN_WANPPPConnection_1
)

// serviceChoice is one connection service found in a root description.
type serviceChoice struct {
	serviceType string
	svc         connectionService
	anyPort     anyPortService // nil unless WANIPConnection:2
}

// fetchRootDescription GETs the root description at loc and returns it parsed,
// with the local address of the connection that fetched it: the address the
// gateway sees us at.
func fetchRootDescription(ctx context.Context, hc *http.Client, loc *url.URL) (*goupnp.RootDevice, netip.Addr, error) {
	var local netip.Addr
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
			if ap := a.AddrPort(); ap.Addr().IsValid() {
				local = ap.Addr().Unmap()
			}
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, netip.Addr{}, fmt.Errorf("HTTP status %s", resp.Status)
	}
	root, err := parseRootDescription(resp.Body, loc)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	if !local.IsValid() {
		local, err = routeSource(loc)
		if err != nil {
			return nil, netip.Addr{}, err
		}
	}
	return root, local, nil
}

// routeSource returns the source address the kernel would use toward the host of
// loc, by "connecting" a UDP socket (no packet is sent).
func routeSource(loc *url.URL) (netip.Addr, error) {
	port := loc.Port()
	if port == "" {
		port = "80"
	}
	c, err := net.Dial("udp4", net.JoinHostPort(loc.Hostname(), port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding our address toward the gateway: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// parseRootDescription decodes a root device description and resolves its URLs
// against its URLBase, or loc if it has none.
func parseRootDescription(r io.Reader, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(r)
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	dec.CharsetReader = goupnp.CharsetReaderDefault
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("parsing root description: %w", err)
	}
	base := loc
	if root.URLBaseStr != "" {
		u, err := url.Parse(root.URLBaseStr)
		if err != nil {
			return nil, fmt.Errorf("parsing root description: bad URLBase %q: %w", root.URLBaseStr, err)
		}
		base = u
	}
	root.SetURLBase(base)
	return root, nil
}

// chooseServices returns the connection services of root, best first. Their SOAP
// requests go through hc. A service whose control URL is not http(s) on the host
// that served the description is left out: the description must not send our
// requests elsewhere.
func chooseServices(root *goupnp.RootDevice, loc *url.URL, hc *http.Client) ([]serviceChoice, error) {
	var out []serviceChoice
	var rejected error
	add := func(serviceType string, sc *goupnp.ServiceClient, svc connectionService, anyPort anyPortService) {
		u := sc.Service.ControlURL.URL
		if !sc.Service.ControlURL.Ok || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Hostname(), loc.Hostname()) {
			rejected = fmt.Errorf("%s has control URL %q, not on the gateway %s", serviceType, sc.Service.ControlURL.Str, loc.Host)
			return
		}
		sc.SOAPClient.HTTPClient = *hc
		out = append(out, serviceChoice{serviceType: serviceType, svc: svc, anyPort: anyPort})
	}
	// The constructors fail only when the device has no such service.
	ip2, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc)
	for _, c := range ip2 {
		add(ServiceWANIPConnection2, &c.ServiceClient, c, c)
	}
	ip1, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ip1 {
		add(ServiceWANIPConnection1, &c.ServiceClient, c, nil)
	}
	ppp, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ppp {
		add(ServiceWANPPPConnection1, &c.ServiceClient, c, nil)
	}
	if len(out) == 0 {
		if rejected != nil {
			return nil, rejected
		}
		return nil, fmt.Errorf("device %q (%s) offers none of WANIPConnection:2, WANIPConnection:1, WANPPPConnection:1",
			root.Device.FriendlyName, root.Device.DeviceType)
	}
	return out, nil
}
