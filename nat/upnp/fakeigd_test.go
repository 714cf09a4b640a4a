package upnp

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIGD is an Internet Gateway Device for tests: an HTTP server on 127.0.0.1
// that serves a root description with one connection service and answers its SOAP
// actions GetExternalIPAddress, AddPortMapping, AddAnyPortMapping (IGD:2 only),
// DeletePortMapping and GetSpecificPortMappingEntry. It records every request.
type fakeIGD struct {
	t           testing.TB
	srv         *httptest.Server
	serviceType string
	closing     chan struct{}

	mu       sync.Mutex
	extIP    string
	mappings map[mapKey]fakeMapping
	calls    []soapCall
	changed  chan struct{} // closed and replaced on every recorded call

	// Knobs, set under mu (or before the first request).
	permanentOnly bool              // AddPortMapping with a lease other than 0 fails with 725
	conflicts     map[uint16]bool   // external ports held by another client: 718
	failNext      int               // answer the next N requests (any path) with a bare HTTP 500
	hang          bool              // never answer SOAP requests
	rootBody      string            // if set, served instead of the root description
	rootStatus    int               // if set, the root description's HTTP status
	answers       map[string]string // action → raw body (HTTP 200) served instead of the real answer
}

type mapKey struct {
	proto string
	port  uint16
}

type fakeMapping struct {
	client string
	port   uint16
	lease  string
	desc   string
}

// soapCall is one request the fake received: Action is the SOAP action, or
// "description" for a GET of the root description.
type soapCall struct {
	Action string
	Args   map[string]string
}

const (
	fakeExternalIP = "203.0.113.7"
	fakeRootPath   = "/rootDesc.xml"
	fakeControl    = "/ctl/IPConn"
)

// newFakeIGD starts a fake gateway offering serviceType and stops it at cleanup.
func newFakeIGD(t testing.TB, serviceType string) *fakeIGD {
	t.Helper()
	f := &fakeIGD{
		t:           t,
		serviceType: serviceType,
		closing:     make(chan struct{}),
		extIP:       fakeExternalIP,
		mappings:    map[mapKey]fakeMapping{},
		changed:     make(chan struct{}),
		conflicts:   map[uint16]bool{},
		answers:     map[string]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.closing)
		f.srv.Close()
	})
	return f
}

func (f *fakeIGD) rootURL() string { return f.srv.URL + fakeRootPath }

func (f *fakeIGD) set(change func(f *fakeIGD)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// restart forgets every mapping, as a gateway does when it restarts; nothing else
// changes.
func (f *fakeIGD) restart() { f.set(func(f *fakeIGD) { clear(f.mappings) }) }

func (f *fakeIGD) record(c soapCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
}

// callsOf returns the recorded calls of action.
func (f *fakeIGD) callsOf(action string) []soapCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []soapCall
	for _, c := range f.calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// mapping returns the fake's mapping of proto ("TCP"/"UDP") port.
func (f *fakeIGD) mapping(proto string, port uint16) (fakeMapping, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mappings[mapKey{proto, port}]
	return m, ok
}

func (f *fakeIGD) numMappings() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.mappings)
}

// waitCalls waits until action has been called at least n times in all.
func (f *fakeIGD) waitCalls(action string, n int) []soapCall {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if cs := f.callsOf(action); len(cs) >= n {
			return cs
		}
		select {
		case <-changed:
		case <-deadline:
			f.t.Fatalf("fake IGD: waited 10 s for %d %s calls, got %d", n, action, len(f.callsOf(action)))
		}
	}
}

func (f *fakeIGD) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	f.mu.Unlock()

	if r.Method == http.MethodGet && r.URL.Path == fakeRootPath {
		f.record(soapCall{Action: "description"})
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		f.mu.Lock()
		body, status := f.rootBody, f.rootStatus
		f.mu.Unlock()
		if body == "" {
			body = rootDescription(f.serviceType, fakeControl)
		}
		if status != 0 {
			w.WriteHeader(status)
		}
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		io.WriteString(w, body)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != fakeControl {
		http.NotFound(w, r)
		return
	}

	ns, action, _ := strings.Cut(strings.Trim(r.Header.Get("SOAPACTION"), `"`), "#")
	args, err := parseSOAPRequest(r.Body)
	if err != nil {
		f.t.Errorf("fake IGD: bad SOAP request for %s: %v", action, err)
	}
	f.record(soapCall{Action: action, Args: args})
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	hang := f.hang
	raw, overridden := f.answers[action]
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-f.closing:
		}
		return
	}
	if overridden {
		io.WriteString(w, raw)
		return
	}
	if ns != f.serviceType {
		writeFault(w, 401, "Invalid Action")
		return
	}
	out, code, desc := f.act(action, args)
	if code != 0 {
		writeFault(w, code, desc)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?>`+"\r\n"+`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">`, action, f.serviceType)
	for i := 0; i+1 < len(out); i += 2 {
		fmt.Fprintf(&b, "<%s>%s</%s>", out[i], out[i+1], out[i])
	}
	fmt.Fprintf(&b, `</u:%sResponse></s:Body></s:Envelope>`+"\r\n", action)
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	io.WriteString(w, b.String())
}

// act performs action and returns its out arguments as name, value pairs, or a
// UPnP error code and description.
func (f *fakeIGD) act(action string, a map[string]string) (out []string, code int, desc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	port64, _ := strconv.ParseUint(a["NewExternalPort"], 10, 16)
	key := mapKey{a["NewProtocol"], uint16(port64)}
	switch action {
	case "GetExternalIPAddress":
		return []string{"NewExternalIPAddress", f.extIP}, 0, ""
	case "AddPortMapping", "AddAnyPortMapping":
		if action == "AddAnyPortMapping" && f.serviceType != ServiceWANIPConnection2 {
			return nil, 401, "Invalid Action"
		}
		if key.proto != "TCP" && key.proto != "UDP" {
			return nil, 402, "Invalid Args"
		}
		in, err := strconv.ParseUint(a["NewInternalPort"], 10, 16)
		if err != nil || in == 0 || a["NewInternalClient"] == "" || a["NewEnabled"] != "1" {
			return nil, 402, "Invalid Args"
		}
		if f.permanentOnly && a["NewLeaseDuration"] != "0" {
			return nil, codeOnlyPermanentLeases, "OnlyPermanentLeasesSupported"
		}
		taken := func(k mapKey) bool {
			m, ok := f.mappings[k]
			return f.conflicts[k.port] || (ok && m.client != a["NewInternalClient"])
		}
		if action == "AddAnyPortMapping" {
			for key.port == 0 || taken(key) {
				key.port = 40000 + key.port%1000 + 1
			}
		} else if key.port == 0 {
			return nil, 716, "WildCardNotPermittedInExtPort"
		} else if taken(key) {
			return nil, codeConflict, "ConflictInMappingEntry"
		}
		f.mappings[key] = fakeMapping{client: a["NewInternalClient"], port: uint16(in), lease: a["NewLeaseDuration"], desc: a["NewPortMappingDescription"]}
		if action == "AddAnyPortMapping" {
			return []string{"NewReservedPort", strconv.Itoa(int(key.port))}, 0, ""
		}
		return nil, 0, ""
	case "DeletePortMapping":
		if _, ok := f.mappings[key]; !ok {
			return nil, codeNoSuchEntry, "NoSuchEntryInArray"
		}
		delete(f.mappings, key)
		return nil, 0, ""
	case "GetSpecificPortMappingEntry":
		m, ok := f.mappings[key]
		if !ok {
			return nil, codeNoSuchEntry, "NoSuchEntryInArray"
		}
		return []string{
			"NewInternalPort", strconv.Itoa(int(m.port)),
			"NewInternalClient", m.client,
			"NewEnabled", "1",
			"NewPortMappingDescription", m.desc,
			"NewLeaseDuration", m.lease,
		}, 0, ""
	}
	return nil, 401, "Invalid Action"
}

// parseSOAPRequest returns the arguments of the action in a SOAP request body.
func parseSOAPRequest(r io.Reader) (map[string]string, error) {
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
	if err := xml.NewDecoder(r).Decode(&env); err != nil {
		return nil, err
	}
	args := map[string]string{}
	for _, a := range env.Body.Action.Args {
		args[a.XMLName.Local] = a.Value
	}
	return args, nil
}

func writeFault(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\r\n"+`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`+"\r\n", code, desc)
}

// rootDescription is a root description shaped like miniupnpd's: an
// InternetGatewayDevice with a WANDevice holding a WANConnectionDevice that offers
// serviceType at the relative control URL control.
func rootDescription(serviceType, control string) string {
	version := "1"
	if serviceType == ServiceWANIPConnection2 {
		version = "2"
	}
	return `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major><minor>1</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:` + version + `</deviceType><friendlyName>fake router</friendlyName><manufacturer>crust</manufacturer><manufacturerURL>http://example.com/</manufacturerURL><modelDescription>fake IGD</modelDescription><modelName>fake</modelName><modelNumber>1</modelNumber><modelURL>http://example.com/</modelURL><serialNumber>00000000</serialNumber><UDN>uuid:0c2a1e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b</UDN><serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><SCPDURL>/L3F.xml</SCPDURL><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:` + version + `</deviceType><friendlyName>WANDevice</friendlyName><manufacturer>crust</manufacturer><manufacturerURL>http://example.com/</manufacturerURL><modelDescription>WAN Device</modelDescription><modelName>WAN Device</modelName><modelNumber>1</modelNumber><modelURL>http://example.com/</modelURL><serialNumber>00000000</serialNumber><UDN>uuid:0c2a1e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5c</UDN><UPC>000000000000</UPC><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><SCPDURL>/WANCfg.xml</SCPDURL><controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:` + version + `</deviceType><friendlyName>WANConnectionDevice</friendlyName><manufacturer>crust</manufacturer><manufacturerURL>http://example.com/</manufacturerURL><modelDescription>WAN Connection Device</modelDescription><modelName>WAN Connection Device</modelName><modelNumber>1</modelNumber><modelURL>http://example.com/</modelURL><serialNumber>00000000</serialNumber><UDN>uuid:0c2a1e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5d</UDN><UPC>000000000000</UPC><serviceList><service><serviceType>` + serviceType + `</serviceType><serviceId>urn:upnp-org:serviceId:WANConn1</serviceId><SCPDURL>/WANConn.xml</SCPDURL><controlURL>` + control + `</controlURL><eventSubURL>/evt/conn</eventSubURL></service></serviceList></device></deviceList></device></deviceList><presentationURL>http://192.168.1.1/</presentationURL></device></root>
`
}
