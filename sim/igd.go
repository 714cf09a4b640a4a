package sim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crust-p2p/crust/sim/vnet"
)

// IGDPort is where the simulation's UPnP gateways serve HTTP (miniupnpd's usual
// port).
const IGDPort = 2189

// The gateway's service and where it is served.
const (
	igdService     = "urn:schemas-upnp-org:service:WANIPConnection:2"
	igdRootPath    = "/rootDesc.xml"
	igdControlPath = "/ctl/IPConn"
)

// UPnP error codes the gateway answers with (UPnP IGD:2 WANIPConnection:2).
const (
	upnpInvalidAction    = 401
	upnpInvalidArgs      = 402
	upnpNotAuthorized    = 606
	upnpNoSuchEntry      = 714
	upnpWildcardExtPort  = 716
	upnpConflict         = 718
	upnpRemoteHostNeeded = 726
)

// IGD is a UPnP Internet Gateway Device for a NAT router of the virtual network: an
// HTTP server on a host of the router's LAN that serves a root description with a
// WANIPConnection:2 service and answers its SOAP actions (GetExternalIPAddress,
// AddPortMapping, AddAnyPortMapping, DeletePortMapping,
// GetSpecificPortMappingEntry) with the router's static port mappings
// (vnet.Router.AddPortMapping). As miniupnpd in its default secure mode, it maps
// ports only to the address that asks, and lets only that address delete them.
type IGD struct {
	router *vnet.Router
	ln     *vnet.Listener
	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	mu    sync.Mutex
	descs map[igdKey]string // the mappings' descriptions
}

type igdKey struct {
	proto    string // "tcp" or "udp"
	external uint16
}

// StartIGD starts a gateway for router on host, a host of the router's LAN, at port
// IGDPort; Close stops it.
func StartIGD(host *vnet.Host, router *vnet.Router) (*IGD, error) {
	ln, err := host.Listen(IGDPort)
	if err != nil {
		return nil, fmt.Errorf("starting the UPnP gateway of %v: %w", router, err)
	}
	g := &IGD{router: router, ln: ln, served: make(chan struct{}), descs: map[igdKey]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+igdRootPath, g.serveDescription)
	mux.HandleFunc("POST "+igdControlPath, g.serveControl)
	g.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		defer close(g.served)
		g.srv.Serve(ln) // returns when Close closes the listener
	}()
	return g, nil
}

// RootURL is the gateway's root description URL, for crust.Config.UPnPRootURL.
func (g *IGD) RootURL() string {
	return "http://" + g.ln.Addr().String() + igdRootPath
}

// Close stops the server and its connections and waits for it. The router's
// mappings stay until their leases end. Closing twice is harmless.
func (g *IGD) Close() error {
	err := g.srv.Close()
	<-g.served
	return err
}

func (g *IGD) serveDescription(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	io.WriteString(w, igdDescription)
}

// serveControl answers one SOAP action.
func (g *IGD) serveControl(w http.ResponseWriter, r *http.Request) {
	ns, action, _ := strings.Cut(strings.Trim(r.Header.Get("SOAPAction"), `"`), "#")
	args, err := parseSOAPArgs(r.Body)
	if err != nil || ns != igdService {
		writeSOAPFault(w, upnpInvalidAction, "Invalid Action")
		return
	}
	client, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		writeSOAPFault(w, upnpInvalidArgs, "Invalid Args")
		return
	}
	out, code, desc := g.act(action, args, client.Addr())
	if code != 0 {
		writeSOAPFault(w, code, desc)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?>`+"\r\n"+`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">`, action, igdService)
	for i := 0; i+1 < len(out); i += 2 {
		fmt.Fprintf(&b, "<%s>", out[i])
		xml.EscapeText(&b, []byte(out[i+1]))
		fmt.Fprintf(&b, "</%s>", out[i])
	}
	fmt.Fprintf(&b, `</u:%sResponse></s:Body></s:Envelope>`+"\r\n", action)
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	io.WriteString(w, b.String())
}

// act performs action for client with arguments a and returns its out arguments
// as name, value pairs, or a UPnP error code and description.
func (g *IGD) act(action string, a map[string]string, client netip.Addr) (out []string, code int, desc string) {
	if action == "GetExternalIPAddress" {
		return []string{"NewExternalIPAddress", g.router.Addr().String()}, 0, ""
	}
	proto := strings.ToLower(a["NewProtocol"])
	external, err := strconv.ParseUint(a["NewExternalPort"], 10, 16)
	if (proto != "tcp" && proto != "udp") || err != nil {
		return nil, upnpInvalidArgs, "Invalid Args"
	}
	key := igdKey{proto, uint16(external)}
	switch action {
	case "AddPortMapping", "AddAnyPortMapping":
		return g.add(action, key, a, client)
	case "DeletePortMapping":
		pm, ok := g.router.PortMapping(proto, key.external)
		if !ok {
			return nil, upnpNoSuchEntry, "NoSuchEntryInArray"
		}
		if pm.Internal.Addr() != client {
			return nil, upnpNotAuthorized, "Action not authorized"
		}
		if err := g.router.DeletePortMapping(proto, key.external); err != nil {
			return nil, upnpNoSuchEntry, "NoSuchEntryInArray"
		}
		g.mu.Lock()
		delete(g.descs, key)
		g.mu.Unlock()
		return nil, 0, ""
	case "GetSpecificPortMappingEntry":
		pm, ok := g.router.PortMapping(proto, key.external)
		if !ok {
			return nil, upnpNoSuchEntry, "NoSuchEntryInArray"
		}
		lease := 0 // permanent
		if !pm.Expires.IsZero() {
			left := pm.Expires.Sub(g.router.Network().Clock().Now())
			lease = max(int((left+time.Second-1)/time.Second), 1)
		}
		g.mu.Lock()
		d := g.descs[key]
		g.mu.Unlock()
		return []string{
			"NewInternalPort", strconv.Itoa(int(pm.Internal.Port())),
			"NewInternalClient", pm.Internal.Addr().String(),
			"NewEnabled", "1",
			"NewPortMappingDescription", d,
			"NewLeaseDuration", strconv.Itoa(lease),
		}, 0, ""
	}
	return nil, upnpInvalidAction, "Invalid Action"
}

// add performs AddPortMapping (key's port or a conflict) or AddAnyPortMapping (the
// first free port from key's up, as miniupnpd does).
func (g *IGD) add(action string, key igdKey, a map[string]string, client netip.Addr) (out []string, code int, desc string) {
	internalPort, err := strconv.ParseUint(a["NewInternalPort"], 10, 16)
	internal, aerr := netip.ParseAddr(a["NewInternalClient"])
	lease, lerr := strconv.ParseUint(a["NewLeaseDuration"], 10, 32)
	switch {
	case err != nil || internalPort == 0 || aerr != nil || lerr != nil || a["NewEnabled"] != "1":
		return nil, upnpInvalidArgs, "Invalid Args"
	case a["NewRemoteHost"] != "":
		return nil, upnpRemoteHostNeeded, "RemoteHostOnlySupportsWildcard"
	case key.external == 0 && action == "AddPortMapping":
		return nil, upnpWildcardExtPort, "WildCardNotPermittedInExtPort"
	case internal.Unmap() != client:
		return nil, upnpNotAuthorized, "Action not authorized"
	}
	to := netip.AddrPortFrom(client, uint16(internalPort))
	port := key.external
	if action == "AddAnyPortMapping" {
		port = max(port, 1024)
	}
	for {
		err = g.router.AddPortMapping(key.proto, port, to, time.Duration(lease)*time.Second)
		if err == nil || action == "AddPortMapping" || !errors.Is(err, vnet.ErrPortMappingConflict) || port == 65535 {
			break
		}
		port++
	}
	switch {
	case errors.Is(err, vnet.ErrPortMappingConflict):
		return nil, upnpConflict, "ConflictInMappingEntry"
	case err != nil:
		return nil, upnpInvalidArgs, "Invalid Args"
	}
	g.mu.Lock()
	g.descs[igdKey{key.proto, port}] = a["NewPortMappingDescription"]
	g.mu.Unlock()
	if action == "AddAnyPortMapping" {
		return []string{"NewReservedPort", strconv.Itoa(int(port))}, 0, ""
	}
	return nil, 0, ""
}

// parseSOAPArgs returns the arguments of the action in a SOAP request body.
func parseSOAPArgs(r io.Reader) (map[string]string, error) {
	var env struct {
		Body struct {
			Action struct {
				Args []struct {
					XMLName xml.Name
					Value   string `xml:",chardata"`
				} `xml:",any"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.NewDecoder(io.LimitReader(r, 1<<16)).Decode(&env); err != nil {
		return nil, err
	}
	args := map[string]string{}
	for _, a := range env.Body.Action.Args {
		args[a.XMLName.Local] = strings.TrimSpace(a.Value)
	}
	return args, nil
}

// writeSOAPFault answers with a UPnP error, as a SOAP fault (HTTP 500).
func writeSOAPFault(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\r\n"+`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`+"\r\n", code, desc)
}

// igdDescription is the root description, shaped like miniupnpd's: an
// InternetGatewayDevice:2 with a WANDevice holding a WANConnectionDevice that offers
// WANIPConnection:2 at igdControlPath (relative: the client resolves it against the
// description's URL).
const igdDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>` +
	`<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>crust simulator gateway</friendlyName>` +
	`<manufacturer>crust</manufacturer><modelName>sim IGD</modelName><UDN>uuid:5c3a1e2b-0000-4000-8000-000000000001</UDN>` +
	`<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><friendlyName>WANDevice</friendlyName>` +
	`<manufacturer>crust</manufacturer><modelName>sim IGD</modelName><UDN>uuid:5c3a1e2b-0000-4000-8000-000000000002</UDN>` +
	`<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><friendlyName>WANConnectionDevice</friendlyName>` +
	`<manufacturer>crust</manufacturer><modelName>sim IGD</modelName><UDN>uuid:5c3a1e2b-0000-4000-8000-000000000003</UDN>` +
	`<serviceList><service><serviceType>` + igdService + `</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>` +
	`<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>` + igdControlPath + `</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service></serviceList>` +
	`</device></deviceList></device></deviceList></device></root>
`
