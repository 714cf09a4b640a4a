package upnp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huin/goupnp"
)

// Answers captured from Debian 12's miniupnpd 2.3.1 (IGD:2, secure_mode=yes) in
// network namespaces: LAN 192.168.77.0/24 (gateway .1, us .2, another host .3), WAN
// address 198.0.5.1. TCP 7000 was mapped to 192.168.77.3 when they were taken.
const captureDir = "testdata/miniupnpd-2.3.1"

func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// captureTransport answers each SOAP action with a captured file, from memory:
// files named fault-* come with HTTP 500, as miniupnpd sends them.
type captureTransport struct {
	t     testing.TB
	files map[string]string // action → file
}

func (c captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	// goupnp sets the header under its raw name, which Header.Get does not find.
	soapAction := append(req.Header["SOAPACTION"], req.Header.Get("SOAPACTION"))[0]
	_, action, _ := strings.Cut(strings.Trim(soapAction, `"`), "#")
	name, ok := c.files[action]
	if !ok {
		c.t.Errorf("no capture for action %q", action)
		return nil, errors.New("no capture")
	}
	body := readCapture(c.t, name)
	status := http.StatusOK
	if strings.HasPrefix(name, "fault-") {
		status = http.StatusInternalServerError
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status),
		Header:        http.Header{"Content-Type": {`text/xml; charset="utf-8"`}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// capturedGateway is a Gateway made from miniupnpd's captured description whose
// SOAP answers are the captured files.
func capturedGateway(t *testing.T, files map[string]string) *Gateway {
	t.Helper()
	loc, _ := url.Parse("http://192.168.77.1:2189/rootDesc.xml")
	root, err := parseRootDescription(bytes.NewReader(readCapture(t, "rootDesc.xml")), loc)
	if err != nil {
		t.Fatal(err)
	}
	choices, err := chooseServices(root, loc, newHTTPClient(&http.Client{Transport: captureTransport{t, files}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != 1 {
		t.Fatalf("%d services, want 1", len(choices))
	}
	c := choices[0]
	return &Gateway{serviceType: c.serviceType, svc: c.svc, anyPort: c.anyPort, location: loc,
		friendlyName: root.Device.FriendlyName, localAddr: netip.MustParseAddr("192.168.77.2")}
}

func TestMiniupnpdDescription(t *testing.T) {
	loc, _ := url.Parse("http://192.168.77.1:2189/rootDesc.xml")
	root, err := parseRootDescription(bytes.NewReader(readCapture(t, "rootDesc.xml")), loc)
	if err != nil {
		t.Fatal(err)
	}
	if root.Device.FriendlyName != "Debian router" || root.Device.DeviceType != "urn:schemas-upnp-org:device:InternetGatewayDevice:2" {
		t.Errorf("device %q %q", root.Device.FriendlyName, root.Device.DeviceType)
	}
	choices, err := chooseServices(root, loc, newHTTPClient(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != 1 || choices[0].serviceType != ServiceWANIPConnection2 || choices[0].anyPort == nil {
		t.Fatalf("choices %+v, want WANIPConnection:2 with AddAnyPortMapping", choices)
	}
	ip2 := choices[0].svc.(interface{ GetServiceClient() *goupnp.ServiceClient }).GetServiceClient()
	if got := ip2.SOAPClient.EndpointURL.String(); got != "http://192.168.77.1:2189/ctl/IPConn" {
		t.Errorf("control URL %q", got)
	}
}

func TestMiniupnpdAnswers(t *testing.T) {
	g := capturedGateway(t, map[string]string{
		"GetExternalIPAddress":        "GetExternalIPAddress.xml",
		"GetSpecificPortMappingEntry": "GetSpecificPortMappingEntry.xml",
		"AddPortMapping":              "AddPortMapping.xml",
		"AddAnyPortMapping":           "AddAnyPortMapping.xml",
		"DeletePortMapping":           "DeletePortMapping.xml",
	})
	ctx := t.Context()
	if ip, err := g.ExternalIP(ctx); err != nil || ip != netip.MustParseAddr("198.0.5.1") {
		t.Errorf("ExternalIP = %v, %v", ip, err)
	}
	if in, ok, err := g.GetMapping(ctx, "tcp", 7000); err != nil || !ok || in != netip.MustParseAddrPort("192.168.77.3:7000") {
		t.Errorf("GetMapping = %v, %v, %v", in, ok, err)
	}
	if err := g.AddMapping(ctx, "udp", netip.MustParseAddrPort("0.0.0.0:7000"), 7002, time.Minute, "x"); err != nil {
		t.Errorf("AddMapping: %v", err)
	}
	if port, ok, err := g.addAnyMapping(ctx, "tcp", netip.MustParseAddrPort("0.0.0.0:7000"), 7000, time.Minute, "x"); err != nil || !ok || port != 7001 {
		t.Errorf("addAnyMapping = %v, %v, %v", port, ok, err)
	}
	if err := g.DeleteMapping(ctx, "udp", 7002); err != nil {
		t.Errorf("DeleteMapping: %v", err)
	}
}

func TestMiniupnpdFaults(t *testing.T) {
	g := capturedGateway(t, map[string]string{
		"GetSpecificPortMappingEntry": "fault-714.xml",
		"DeletePortMapping":           "fault-714.xml",
		"AddPortMapping":              "fault-718.xml",
	})
	ctx := t.Context()
	if in, ok, err := g.GetMapping(ctx, "udp", 7000); err != nil || ok || in.IsValid() {
		t.Errorf("GetMapping of a missing mapping = %v, %v, %v; want not found", in, ok, err)
	}
	if err := g.DeleteMapping(ctx, "udp", 7000); err != nil {
		t.Errorf("DeleteMapping of a missing mapping = %v, want nil", err)
	}
	err := g.AddMapping(ctx, "tcp", netip.MustParseAddrPort("0.0.0.0:7000"), 7000, time.Minute, "x")
	var ae *ActionError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ae) || ae.Code != 718 || ae.Description != "ConflictInMappingEntry" {
		t.Errorf("AddMapping on a taken port = %v, want ActionError 718", err)
	}

	// In secure mode miniupnpd answers 718 too when the internal client is not
	// the host asking.
	g = capturedGateway(t, map[string]string{"AddPortMapping": "fault-718-secure-mode.xml"})
	if err := g.AddMapping(ctx, "udp", netip.MustParseAddrPort("192.168.77.9:7000"), 7003, time.Minute, "x"); !errors.Is(err, ErrConflict) {
		t.Errorf("AddMapping for another host = %v, want ErrConflict", err)
	}
}

// The fake IGD serves miniupnpd's real description just as well.
func TestDiscoverMiniupnpdDescription(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection2)
	f.set(func(f *fakeIGD) { f.rootBody = string(readCapture(t, "rootDesc.xml")) })
	g := discoverFake(t, f)
	if g.ServiceType() != ServiceWANIPConnection2 || g.String() != `"Debian router" at `+f.rootURL()+` (WANIPConnection:2)` {
		t.Errorf("found %v", g)
	}
}
