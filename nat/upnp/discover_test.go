package upnp

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSearch answers SSDP searches from a table instead of the network.
type fakeSearch struct {
	mu       sync.Mutex
	targets  []string
	locals   []netip.Addr
	answers  map[string][]*http.Response // by search target
	err      error
	deadline time.Duration // the search ctx's time left when called
}

func (s *fakeSearch) search(ctx context.Context, local netip.Addr, st string) ([]*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets, st)
	s.locals = append(s.locals, local)
	if d, ok := ctx.Deadline(); ok {
		s.deadline = time.Until(d)
	}
	return s.answers[st], s.err
}

// ssdpAnswer is an SSDP search answer pointing at location.
func ssdpAnswer(st, location, bootID string) *http.Response {
	h := http.Header{}
	h.Set("ST", st)
	h.Set("USN", "uuid:0c2a1e2b::"+st)
	h.Set("LOCATION", location)
	if bootID != "" {
		h.Set("BOOTID.UPNP.ORG", bootID)
	}
	return &http.Response{StatusCode: 200, Header: h}
}

const (
	igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	igd2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
)

func TestDiscoverBySearch(t *testing.T) {
	good := newFakeIGD(t, ServiceWANIPConnection1)
	notIGD := newFakeIGD(t, ServiceWANIPConnection1)
	notIGD.set(func(f *fakeIGD) {
		f.rootBody = strings.ReplaceAll(rootDescription(ServiceWANIPConnection1, fakeControl), ServiceWANIPConnection1, "urn:schemas-upnp-org:service:Other:1")
	})
	s := &fakeSearch{answers: map[string][]*http.Response{
		igd2: {
			ssdpAnswer(igd2, "ftp://192.0.2.1/rootDesc.xml", ""), // not http: skipped
			ssdpAnswer(igd2, notIGD.rootURL(), "1"),              // fails: next
		},
		igd1: {
			ssdpAnswer(igd1, notIGD.rootURL(), "1"), // already tried
			ssdpAnswer(igd1, good.rootURL(), "42"),
		},
	}}
	local := netip.MustParseAddr("127.0.0.1")
	g, err := Discover(t.Context(), Config{LocalAddr: local, search: s.search})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if g.RootURL() != good.rootURL() || g.BootID() != "42" || g.ServiceType() != ServiceWANIPConnection1 {
		t.Errorf("found %v, BootID %q", g, g.BootID())
	}
	slices.Sort(s.targets)
	if want := []string{igd1, igd2}; !slices.Equal(s.targets, want) {
		t.Errorf("searched for %v, want %v", s.targets, want)
	}
	for _, l := range s.locals {
		if l != local {
			t.Errorf("searched from %v, want %v", l, local)
		}
	}
	if s.deadline <= 0 || s.deadline > 2*time.Second {
		t.Errorf("search window %v, want 2 s of the default 3 s", s.deadline)
	}
	if n := len(notIGD.callsOf("description")); n != 1 {
		t.Errorf("a failing location was fetched %d times, want once", n)
	}
}

func TestDiscoverBySearchFails(t *testing.T) {
	notIGD := newFakeIGD(t, ServiceWANIPConnection1)
	notIGD.set(func(f *fakeIGD) { f.rootStatus = 500 })
	for _, tc := range []struct {
		name string
		cfg  Config
		s    *fakeSearch
		want string
	}{
		{name: "no answer", s: &fakeSearch{}, want: "no answer to an SSDP search"},
		{name: "search error", s: &fakeSearch{err: errors.New("network is unreachable")}, want: "network is unreachable"},
		{name: "only bad devices", s: &fakeSearch{answers: map[string][]*http.Response{igd1: {ssdpAnswer(igd1, notIGD.rootURL(), "")}}}, want: "HTTP status 500"},
		{name: "timeout too short", cfg: Config{DiscoverTimeout: time.Second}, s: &fakeSearch{}, want: "too short"},
		{name: "IPv6 local address", cfg: Config{LocalAddr: netip.MustParseAddr("::1")}, s: &fakeSearch{}, want: "not IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.search = tc.s.search
			_, err := Discover(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// The guard in TestMain holds: a Config without RootURL or search does not
// multicast in tests.
func TestNoMulticastInTests(t *testing.T) {
	_, err := Discover(t.Context(), Config{})
	if !errors.Is(err, errNoMulticastInTests) {
		t.Fatalf("err = %v, want the test guard's refusal", err)
	}
}
