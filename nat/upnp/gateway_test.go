package upnp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var allServices = []string{ServiceWANIPConnection2, ServiceWANIPConnection1, ServiceWANPPPConnection1}

// shortName is the service's name for subtest names.
func shortName(serviceType string) string {
	return strings.TrimPrefix(serviceType, "urn:schemas-upnp-org:service:")
}

func discoverFake(t *testing.T, f *fakeIGD) *Gateway {
	t.Helper()
	g, err := Discover(t.Context(), Config{RootURL: f.rootURL()})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return g
}

func TestDiscoverByRootURL(t *testing.T) {
	for _, st := range allServices {
		t.Run(shortName(st), func(t *testing.T) {
			f := newFakeIGD(t, st)
			g := discoverFake(t, f)
			if g.ServiceType() != st {
				t.Errorf("ServiceType = %q, want %q", g.ServiceType(), st)
			}
			if g.RootURL() != f.rootURL() {
				t.Errorf("RootURL = %q, want %q", g.RootURL(), f.rootURL())
			}
			if want := netip.MustParseAddr("127.0.0.1"); g.LocalAddr() != want {
				t.Errorf("LocalAddr = %v, want %v", g.LocalAddr(), want)
			}
			if g.BootID() != "" {
				t.Errorf("BootID = %q, want none without SSDP", g.BootID())
			}
			ip, err := g.ExternalIP(t.Context())
			if err != nil {
				t.Fatalf("ExternalIP: %v", err)
			}
			if ip != netip.MustParseAddr(fakeExternalIP) {
				t.Errorf("ExternalIP = %v, want %v", ip, fakeExternalIP)
			}
		})
	}
}

// A device with every service gets the preferred one; with IP and PPP
// connections, a service whose external address does not answer is skipped.
func TestDiscoverPrefersServices(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	body := rootDescription(ServiceWANIPConnection1, fakeControl)
	// Add a WANPPPConnection:1 first in the document, at a control URL that 404s:
	// WANIPConnection:1 is still preferred.
	body = strings.Replace(body, "<serviceList><service><serviceType>"+ServiceWANIPConnection1,
		"<serviceList><service><serviceType>"+ServiceWANPPPConnection1+"</serviceType><serviceId>p</serviceId><SCPDURL>/p.xml</SCPDURL><controlURL>/ctl/ppp</controlURL><eventSubURL>/evt/ppp</eventSubURL></service><service><serviceType>"+ServiceWANIPConnection1, 1)
	f.set(func(f *fakeIGD) { f.rootBody = body })
	if g := discoverFake(t, f); g.ServiceType() != ServiceWANIPConnection1 {
		t.Errorf("ServiceType = %q, want WANIPConnection:1", g.ServiceType())
	}

	// Now offer WANIPConnection:2 at the dead URL: it fails, WANIPConnection:1 is used.
	body = strings.Replace(body, ServiceWANPPPConnection1, ServiceWANIPConnection2, 1)
	f.set(func(f *fakeIGD) { f.rootBody = body })
	if g := discoverFake(t, f); g.ServiceType() != ServiceWANIPConnection1 {
		t.Errorf("ServiceType = %q, want WANIPConnection:1 (WANIPConnection:2 does not answer)", g.ServiceType())
	}
}

func TestGatewayAddGetDelete(t *testing.T) {
	for _, st := range allServices {
		t.Run(shortName(st), func(t *testing.T) {
			f := newFakeIGD(t, st)
			g := discoverFake(t, f)
			ctx := t.Context()

			unspecified := netip.MustParseAddrPort("0.0.0.0:7000")
			if err := g.AddMapping(ctx, "tcp", unspecified, 7000, 90*time.Second, "crust test"); err != nil {
				t.Fatalf("AddMapping tcp: %v", err)
			}
			if err := g.AddMapping(ctx, "UDP", netip.MustParseAddrPort("127.0.0.1:7001"), 17001, 1500*time.Millisecond, "crust test"); err != nil {
				t.Fatalf("AddMapping udp: %v", err)
			}
			adds := f.callsOf("AddPortMapping")
			want := []map[string]string{
				{"NewRemoteHost": "", "NewExternalPort": "7000", "NewProtocol": "TCP", "NewInternalPort": "7000",
					"NewInternalClient": "127.0.0.1", "NewEnabled": "1", "NewPortMappingDescription": "crust test", "NewLeaseDuration": "90"},
				{"NewRemoteHost": "", "NewExternalPort": "17001", "NewProtocol": "UDP", "NewInternalPort": "7001",
					"NewInternalClient": "127.0.0.1", "NewEnabled": "1", "NewPortMappingDescription": "crust test", "NewLeaseDuration": "2"},
			}
			if len(adds) != len(want) {
				t.Fatalf("%d AddPortMapping calls, want %d", len(adds), len(want))
			}
			for i := range want {
				for k, v := range want[i] {
					if got, ok := adds[i].Args[k]; !ok || got != v {
						t.Errorf("AddPortMapping #%d: %s = %q, want %q", i, k, got, v)
					}
				}
			}

			for _, tc := range []struct {
				proto    string
				external uint16
				want     netip.AddrPort
				ok       bool
			}{
				{"tcp", 7000, netip.MustParseAddrPort("127.0.0.1:7000"), true},
				{"udp", 17001, netip.MustParseAddrPort("127.0.0.1:7001"), true},
				{"udp", 7000, netip.AddrPort{}, false},
				{"tcp", 9999, netip.AddrPort{}, false},
			} {
				got, ok, err := g.GetMapping(ctx, tc.proto, tc.external)
				if err != nil || ok != tc.ok || got != tc.want {
					t.Errorf("GetMapping(%s, %d) = %v, %v, %v; want %v, %v, nil", tc.proto, tc.external, got, ok, err, tc.want, tc.ok)
				}
			}

			if err := g.DeleteMapping(ctx, "tcp", 7000); err != nil {
				t.Fatalf("DeleteMapping: %v", err)
			}
			if _, ok, err := g.GetMapping(ctx, "tcp", 7000); ok || err != nil {
				t.Errorf("GetMapping after delete = %v, %v; want false, nil", ok, err)
			}
			if err := g.DeleteMapping(ctx, "tcp", 7000); err != nil {
				t.Errorf("DeleteMapping of a missing mapping = %v, want nil", err)
			}
			if f.numMappings() != 1 {
				t.Errorf("gateway has %d mappings, want 1", f.numMappings())
			}
		})
	}
}

func TestGatewayErrors(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	g := discoverFake(t, f)
	ctx := t.Context()
	in := netip.MustParseAddrPort("127.0.0.1:7000")

	f.set(func(f *fakeIGD) { f.conflicts[7000] = true })
	err := g.AddMapping(ctx, "tcp", in, 7000, time.Hour, "x")
	var ae *ActionError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ae) || ae.Code != 718 || ae.Action != "AddPortMapping" || ae.Description != "ConflictInMappingEntry" {
		t.Errorf("conflict: err = %v, want an ActionError 718 matching ErrConflict", err)
	}
	if errors.Is(err, ErrOnlyPermanentLeases) {
		t.Errorf("conflict matches ErrOnlyPermanentLeases")
	}

	f.set(func(f *fakeIGD) { f.permanentOnly = true })
	err = g.AddMapping(ctx, "tcp", in, 7001, time.Hour, "x")
	if !errors.Is(err, ErrOnlyPermanentLeases) || errors.Is(err, ErrConflict) {
		t.Errorf("lease: err = %v, want ErrOnlyPermanentLeases", err)
	}
	if err := g.AddMapping(ctx, "tcp", in, 7001, 0, "x"); err != nil {
		t.Errorf("permanent lease: %v", err)
	}

	for _, tc := range []struct {
		name     string
		proto    string
		internal netip.AddrPort
		external uint16
		want     string
	}{
		{"protocol", "sctp", in, 7000, `protocol "sctp"`},
		{"IPv6", "tcp", netip.MustParseAddrPort("[2001:db8::1]:7000"), 7000, "not IPv4"},
		{"internal port 0", "tcp", netip.MustParseAddrPort("127.0.0.1:0"), 7000, "internal port 0"},
		{"external port 0", "tcp", in, 0, "external port 0"},
	} {
		if err := g.AddMapping(ctx, tc.proto, tc.internal, tc.external, time.Hour, "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := g.GetMapping(ctx, "icmp", 1); err == nil {
		t.Error("GetMapping with protocol icmp: no error")
	}
	if err := g.DeleteMapping(ctx, "icmp", 1); err == nil {
		t.Error("DeleteMapping with protocol icmp: no error")
	}
}

// silentListener accepts TCP connections on 127.0.0.1 and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestDiscoverNoAnswer(t *testing.T) {
	hangingSOAP := newFakeIGD(t, ServiceWANIPConnection1)
	hangingSOAP.set(func(f *fakeIGD) { f.hang = true })

	for _, tc := range []struct {
		name string
		url  string
		want string
	}{
		{"description", "http://" + silentListener(t) + "/rootDesc.xml", "no answer within 300ms"},
		{"SOAP", hangingSOAP.rootURL(), "did not answer GetExternalIPAddress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Discover(t.Context(), Config{RootURL: tc.url, DiscoverTimeout: 300 * time.Millisecond})
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Discover took %v with a 300ms timeout", took)
			}
			if !errors.Is(err, ErrNoGateway) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrNoGateway, DeadlineExceeded, and %q", err, tc.want)
			}
			t.Log(err)
		})
	}

	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = Discover(t.Context(), Config{RootURL: "http://" + addr + "/rootDesc.xml"})
		if !errors.Is(err, ErrNoGateway) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v, want ErrNoGateway and connection refused", err)
		}
	})
}

func TestDiscoverBadAnswers(t *testing.T) {
	soapOK := func(ip string) string {
		return `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="` +
			ServiceWANIPConnection1 + `"><NewExternalIPAddress>` + ip + `</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`
	}
	huge := "<root>" + strings.Repeat("<!-- padding -->", 80_000) + "</root>"
	for _, tc := range []struct {
		name   string
		root   string
		status int
		soap   string // GetExternalIPAddress answer
		want   string
		is     error
	}{
		{name: "root not XML", root: "this is not XML <<<", want: "parsing root description"},
		{name: "root truncated", root: rootDescription(ServiceWANIPConnection1, fakeControl)[:300], want: "parsing root description"},
		{name: "root empty", root: " ", want: "parsing root description"},
		{name: "root HTTP 404", status: 404, want: "HTTP status 404"},
		{name: "root too large", root: huge, want: "larger than 1 MiB"},
		{name: "no connection service", root: strings.ReplaceAll(rootDescription(ServiceWANIPConnection1, fakeControl), ServiceWANIPConnection1, "urn:schemas-upnp-org:service:Other:1"), want: "offers none of"},
		{name: "control URL elsewhere", root: rootDescription(ServiceWANIPConnection1, "http://192.0.2.9/ctl"), want: "not on the gateway"},
		{name: "control URL not http", root: rootDescription(ServiceWANIPConnection1, "file:///etc/passwd"), want: "not on the gateway"},
		{name: "bad URLBase", root: strings.Replace(rootDescription(ServiceWANIPConnection1, fakeControl), "<specVersion>", "<URLBase>http://[::1</URLBase><specVersion>", 1), want: "bad URLBase"},
		{name: "SOAP not XML", soap: "garbage", want: "GetExternalIPAddress"},
		{name: "SOAP empty", soap: " ", want: "GetExternalIPAddress"},
		{name: "SOAP wrong envelope", soap: "<html><body>hello</body></html>", want: "GetExternalIPAddress"},
		{name: "SOAP fault without code", soap: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>boom</faultstring></s:Fault></s:Body></s:Envelope>`, want: "UPnP error 0 boom"},
		{name: "external IP not an IP", soap: soapOK("not-an-ip"), want: `"not-an-ip" is not an IP address`},
		{name: "external IP empty", soap: soapOK(""), is: ErrNoExternalAddress},
		{name: "external IP unspecified", soap: soapOK("0.0.0.0"), is: ErrNoExternalAddress},
		{name: "external IP is IPv6", soap: soapOK("2001:db8::1"), is: ErrNoExternalAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIGD(t, ServiceWANIPConnection1)
			f.set(func(f *fakeIGD) {
				f.rootBody, f.rootStatus = tc.root, tc.status
				if tc.soap != "" {
					f.answers["GetExternalIPAddress"] = tc.soap
				}
			})
			_, err := Discover(t.Context(), Config{RootURL: f.rootURL()})
			if !errors.Is(err, ErrNoGateway) {
				t.Fatalf("err = %v, want ErrNoGateway", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

// Garbage answers to the mapping actions are errors, never panics or bogus
// mappings.
func TestGatewayBadMappingAnswers(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	g := discoverFake(t, f)
	ctx := t.Context()
	entry := func(fields string) string {
		return `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetSpecificPortMappingEntryResponse xmlns:u="` +
			ServiceWANIPConnection1 + `">` + fields + `</u:GetSpecificPortMappingEntryResponse></s:Body></s:Envelope>`
	}
	for _, tc := range []struct {
		name, answer, want string
	}{
		{"not XML", "}{", "GetSpecificPortMappingEntry"},
		{"bad port", entry(`<NewInternalPort>70000</NewInternalPort><NewInternalClient>127.0.0.1</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription/><NewLeaseDuration>0</NewLeaseDuration>`), "GetSpecificPortMappingEntry"},
		{"bad client", entry(`<NewInternalPort>7000</NewInternalPort><NewInternalClient>my-pc</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription/><NewLeaseDuration>0</NewLeaseDuration>`), `internal client "my-pc"`},
	} {
		f.set(func(f *fakeIGD) { f.answers["GetSpecificPortMappingEntry"] = tc.answer })
		if got, ok, err := g.GetMapping(ctx, "tcp", 7000); err == nil || ok || got.IsValid() || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: GetMapping = %v, %v, %v; want an error saying %q", tc.name, got, ok, err, tc.want)
		}
	}
	f.set(func(f *fakeIGD) {
		f.answers["GetSpecificPortMappingEntry"] = entry(`<NewInternalPort>7000</NewInternalPort><NewInternalClient>127.0.0.1</NewInternalClient><NewEnabled>0</NewEnabled><NewPortMappingDescription/><NewLeaseDuration>0</NewLeaseDuration>`)
	})
	if _, ok, err := g.GetMapping(ctx, "tcp", 7000); ok || err != nil {
		t.Errorf("disabled mapping: GetMapping = %v, %v; want false, nil", ok, err)
	}

	f.set(func(f *fakeIGD) { f.answers["AddPortMapping"] = "<nonsense" })
	if err := g.AddMapping(ctx, "tcp", netip.MustParseAddrPort("127.0.0.1:7000"), 7000, time.Hour, "x"); err == nil {
		t.Error("AddMapping with a garbage answer: no error")
	}
	f.set(func(f *fakeIGD) { f.failNext = 1 })
	if err := g.DeleteMapping(ctx, "tcp", 7000); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("DeleteMapping with HTTP 500: err = %v", err)
	}
}

func TestDiscoverBadRootURL(t *testing.T) {
	for _, u := range []string{"ftp://192.168.1.1/rootDesc.xml", "192.168.1.1:2189", "http://", "http://[::1"} {
		if _, err := Discover(t.Context(), Config{RootURL: u}); err == nil || !strings.Contains(err.Error(), "not an http:// URL") {
			t.Errorf("RootURL %q: err = %v", u, err)
		}
	}
}
