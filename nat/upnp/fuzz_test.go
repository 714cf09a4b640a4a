package upnp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRootDescription feeds arbitrary bytes to the root description parser and
// the service choice (no network): no panic, and any service chosen has its
// control URL on the gateway's host.
func FuzzRootDescription(f *testing.F) {
	for _, st := range allServices {
		f.Add([]byte(rootDescription(st, fakeControl)))
	}
	f.Add([]byte(rootDescription(ServiceWANIPConnection1, "http://192.0.2.9/ctl")))
	f.Add([]byte(strings.Replace(rootDescription(ServiceWANIPConnection2, "ctl/conn"), "<specVersion>", "<URLBase>http://192.168.1.1:5000/</URLBase><specVersion>", 1)))
	f.Add([]byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device><serviceList><service><serviceType>` +
		ServiceWANPPPConnection1 + `</serviceType><controlURL>%zz</controlURL></service></serviceList></device></deviceList></device></deviceList></device></root>`))
	if b, err := os.ReadFile(filepath.Join(captureDir, "rootDesc.xml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("<root/>"))
	f.Add([]byte(""))
	loc, _ := url.Parse("http://192.168.1.1:2189/rootDesc.xml")
	hc := newHTTPClient(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := parseRootDescription(bytes.NewReader(data), loc)
		if err != nil {
			return
		}
		choices, err := chooseServices(root, loc, hc)
		if err != nil {
			if len(choices) != 0 {
				t.Fatalf("error %v with %d choices", err, len(choices))
			}
			return
		}
		for _, c := range choices {
			if c.svc == nil {
				t.Fatal("choice without a client")
			}
			switch c.serviceType {
			case ServiceWANIPConnection2, ServiceWANIPConnection1, ServiceWANPPPConnection1:
			default:
				t.Fatalf("chose service %q", c.serviceType)
			}
		}
	})
}

// answerTransport answers every HTTP request from memory with one status and
// body: no sockets.
type answerTransport struct {
	status int
	body   []byte
}

func (a answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode:    a.status,
		Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		Header:        http.Header{"Content-Type": {`text/xml; charset="utf-8"`}},
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}, nil
}

// FuzzSOAPAnswers feeds arbitrary bytes as the gateway's answer to every action
// (through goupnp's SOAP decoding and our conversion of its results): no panic,
// and whatever is returned without error is valid.
func FuzzSOAPAnswers(f *testing.F) {
	envelope := func(action, fields string) []byte {
		return []byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:` + action +
			`Response xmlns:u="` + ServiceWANIPConnection1 + `">` + fields + `</u:` + action + `Response></s:Body></s:Envelope>`)
	}
	f.Add(200, envelope("GetExternalIPAddress", "<NewExternalIPAddress>203.0.113.7</NewExternalIPAddress>"))
	f.Add(200, envelope("GetExternalIPAddress", "<NewExternalIPAddress>::ffff:203.0.113.7</NewExternalIPAddress>"))
	f.Add(200, envelope("GetSpecificPortMappingEntry", "<NewInternalPort>7000</NewInternalPort><NewInternalClient>192.168.1.5</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>crust</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>"))
	f.Add(200, envelope("AddPortMapping", ""))
	f.Add(500, []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`))
	f.Add(500, []byte{})
	f.Add(200, []byte("<<<"))
	captures, _ := filepath.Glob(filepath.Join(captureDir, "*.xml"))
	for _, name := range captures {
		if b, err := os.ReadFile(name); err == nil && !strings.HasSuffix(name, "rootDesc.xml") {
			status := 200
			if strings.HasPrefix(filepath.Base(name), "fault-") {
				status = 500
			}
			f.Add(status, b)
		}
	}

	loc, _ := url.Parse("http://192.168.1.1:2189/rootDesc.xml")
	root, err := parseRootDescription(strings.NewReader(rootDescription(ServiceWANIPConnection1, fakeControl)), loc)
	if err != nil {
		f.Fatal(err)
	}
	in := netip.MustParseAddrPort("0.0.0.0:7000")
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		hc := newHTTPClient(&http.Client{Transport: answerTransport{status: status, body: body}})
		choices, err := chooseServices(root, loc, hc)
		if err != nil {
			t.Fatal(err)
		}
		c := choices[0]
		g := &Gateway{serviceType: c.serviceType, svc: c.svc, anyPort: c.anyPort, location: loc, localAddr: netip.MustParseAddr("192.168.1.5")}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()

		if ip, err := g.ExternalIP(ctx); err == nil && (!ip.Is4() || ip.IsUnspecified()) {
			t.Fatalf("ExternalIP = %v without error", ip)
		}
		if got, ok, err := g.GetMapping(ctx, "tcp", 7000); err == nil && ok && !got.Addr().IsValid() {
			t.Fatalf("GetMapping = %v, %v without error", got, ok)
		} else if err != nil && ok {
			t.Fatalf("GetMapping: ok with error %v", err)
		}
		_ = g.AddMapping(ctx, "udp", in, 7000, time.Hour, "crust")
		_ = g.DeleteMapping(ctx, "udp", 7000)
	})
}
