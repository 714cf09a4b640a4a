package upnp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// changes records what a Mapper reports to onChange.
type changes struct {
	mu      sync.Mutex
	got     [][]Mapping
	changed chan struct{}
}

func newChanges() *changes { return &changes{changed: make(chan struct{})} }

func (c *changes) onChange(ms []Mapping) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, ms)
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *changes) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// wait waits for the n-th report (counting from 1) and returns it.
func (c *changes) wait(t *testing.T, n int) []Mapping {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		changed := c.changed
		if len(c.got) >= n {
			defer c.mu.Unlock()
			return c.got[n-1]
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited 10 s for onChange report #%d, got %d", n, c.count())
		}
	}
}

type mapperTest struct {
	m       *Mapper
	clock   *fakeClock
	changes *changes
	runErr  chan error
}

var (
	wantTCP = Wanted{Proto: "tcp", Internal: netip.MustParseAddrPort("0.0.0.0:7000")}
	wantUDP = Wanted{Proto: "udp", Internal: netip.MustParseAddrPort("[::]:7001")}
)

// startMapper runs a Mapper on cfg with a fake clock, and closes it at cleanup.
func startMapper(t *testing.T, cfg Config, want ...Wanted) *mapperTest {
	t.Helper()
	mt := &mapperTest{clock: newFakeClock(), changes: newChanges(), runErr: make(chan error, 1)}
	cfg.Now, cfg.After = mt.clock.Now, mt.clock.After
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Description == "" {
		cfg.Description = "crust test"
	}
	m, err := NewMapper(cfg, want, mt.changes.onChange)
	if err != nil {
		t.Fatal(err)
	}
	mt.m = m
	go func() { mt.runErr <- m.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-mt.runErr; err != nil {
			t.Errorf("Run after Close = %v, want nil", err)
		}
	})
	return mt
}

func mapping(proto, internal, external string) Mapping {
	return Mapping{Proto: proto, Internal: netip.MustParseAddrPort(internal), External: netip.MustParseAddrPort(external)}
}

func checkMappings(t *testing.T, got []Mapping, want ...Mapping) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("mappings = %v, want %v", got, want)
	}
}

var bothMapped = []Mapping{
	mapping("tcp", "127.0.0.1:7000", fakeExternalIP+":7000"),
	mapping("udp", "127.0.0.1:7001", fakeExternalIP+":7001"),
}

// checkGatewayHas checks that the fake has our two mappings with lease lease.
func checkGatewayHas(t *testing.T, f *fakeIGD, lease string) {
	t.Helper()
	for _, k := range []struct {
		proto    string
		port     uint16
		internal uint16
	}{{"TCP", 7000, 7000}, {"UDP", 7001, 7001}} {
		m, ok := f.mapping(k.proto, k.port)
		if !ok || m.client != "127.0.0.1" || m.port != k.internal || m.lease != lease || m.desc != "crust test" {
			t.Errorf("gateway's %s %d = %+v, %v; want 127.0.0.1:%d, lease %s, \"crust test\"", k.proto, k.port, m, ok, k.internal, lease)
		}
	}
}

// The Mapper maps TCP and UDP, on every connection service, and renews at half
// the lease.
func TestMapperMapsAndRenews(t *testing.T) {
	for _, st := range allServices {
		t.Run(shortName(st), func(t *testing.T) {
			f := newFakeIGD(t, st)
			mt := startMapper(t, Config{RootURL: f.rootURL(), Lease: 2 * time.Second}, wantTCP, wantUDP)

			checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
			checkMappings(t, mt.m.Mappings(), bothMapped...)
			checkGatewayHas(t, f, "2")

			for renewal := 1; renewal <= 2; renewal++ {
				if d := mt.clock.fire(t); d != time.Second {
					t.Fatalf("renewal %d after %v, want 1s (half the lease)", renewal, d)
				}
				adds := f.waitCalls("AddPortMapping", 2+2*renewal)
				for _, a := range adds[len(adds)-2:] {
					if a.Args["NewLeaseDuration"] != "2" || a.Args["NewInternalClient"] != "127.0.0.1" {
						t.Errorf("renewal %d: AddPortMapping %v", renewal, a.Args)
					}
				}
				mt.clock.expectTimer(t, time.Second)
			}
			if n := len(f.callsOf("GetSpecificPortMappingEntry")); n != 0 {
				t.Errorf("%d GetSpecificPortMappingEntry calls: a mapping renewed now needs no check", n)
			}
			if n := mt.changes.count(); n != 1 {
				t.Errorf("%d onChange reports, want 1: renewals change nothing", n)
			}
		})
	}
}

// A gateway that restarts and forgets the mappings gets them back at the next
// check.
func TestMapperRecreatesAfterRestart(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	mt := startMapper(t, Config{RootURL: f.rootURL(), CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
	mt.clock.expectTimer(t, 10*time.Second)

	// A check with everything in place only reads.
	mt.clock.fire(t)
	mt.clock.expectTimer(t, 10*time.Second)
	if n := len(f.callsOf("GetSpecificPortMappingEntry")); n != 2 {
		t.Errorf("%d GetSpecificPortMappingEntry calls, want 2", n)
	}
	if n := len(f.callsOf("AddPortMapping")); n != 2 {
		t.Errorf("%d AddPortMapping calls, want 2", n)
	}

	f.restart()
	mt.clock.fire(t)
	f.waitCalls("AddPortMapping", 4)
	mt.clock.expectTimer(t, 10*time.Second)
	checkGatewayHas(t, f, "3600")
	checkMappings(t, mt.m.Mappings(), bothMapped...)
}

// A gateway that takes only permanent leases (725) gets lease 0, and the
// Mapper then only checks.
func TestMapperPermanentLeases(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	f.set(func(f *fakeIGD) { f.permanentOnly = true })
	mt := startMapper(t, Config{RootURL: f.rootURL(), Lease: 2 * time.Second, CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
	checkGatewayHas(t, f, "0")

	var leases []string
	for _, a := range f.callsOf("AddPortMapping") {
		leases = append(leases, a.Args["NewLeaseDuration"])
	}
	if want := []string{"2", "0", "0"}; !slices.Equal(leases, want) {
		t.Errorf("AddPortMapping leases %v, want %v", leases, want)
	}
	mt.clock.expectTimer(t, 10*time.Second) // no renewal, only the check
	mt.clock.fire(t)
	f.waitCalls("GetSpecificPortMappingEntry", 2)
	mt.clock.expectTimer(t, 10*time.Second)
	if n := len(f.callsOf("AddPortMapping")); n != 3 {
		t.Errorf("%d AddPortMapping calls after a check, want 3", n)
	}
}

// A port another client holds (718) is mapped elsewhere: on IGD:1 at a random
// port, on IGD:2 where AddAnyPortMapping puts it.
func TestMapperConflict(t *testing.T) {
	for _, st := range []string{ServiceWANIPConnection1, ServiceWANIPConnection2} {
		t.Run(shortName(st), func(t *testing.T) {
			f := newFakeIGD(t, st)
			f.set(func(f *fakeIGD) { f.conflicts[7000] = true })
			mt := startMapper(t, Config{RootURL: f.rootURL()}, wantTCP, wantUDP)
			got := mt.changes.wait(t, 1)
			if len(got) != 2 {
				t.Fatalf("mappings = %v, want 2", got)
			}
			checkMappings(t, got[1:], bothMapped[1])
			tcp := got[0]
			port := tcp.External.Port()
			if tcp.Proto != "tcp" || tcp.Internal != netip.MustParseAddrPort("127.0.0.1:7000") || tcp.External.Addr() != netip.MustParseAddr(fakeExternalIP) || port == 7000 || port < 1024 {
				t.Fatalf("tcp mapping = %v, want 127.0.0.1:7000 at another external port", tcp)
			}
			if m, ok := f.mapping("TCP", port); !ok || m.client != "127.0.0.1" || m.port != 7000 {
				t.Errorf("gateway's TCP %d = %+v, %v", port, m, ok)
			}
			if st == ServiceWANIPConnection2 && len(f.callsOf("AddAnyPortMapping")) != 1 {
				t.Errorf("IGD:2 was not asked for any port")
			}

			// The other port is kept across a restart of the gateway.
			f.restart()
			n := len(f.callsOf("AddPortMapping"))
			mt.clock.fire(t)
			mt.clock.waitTimer(t)
			if _, ok := f.mapping("TCP", port); !ok || len(f.callsOf("AddPortMapping")) != n+2 {
				t.Errorf("after a restart, TCP %d is not mapped again", port)
			}
			checkMappings(t, mt.m.Mappings(), got...)
		})
	}
}

func TestMapperCloseDeletes(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	mt := startMapper(t, Config{RootURL: f.rootURL()}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
	mt.clock.waitTimer(t)

	if err := mt.m.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-mt.runErr; err != nil {
		t.Errorf("Run = %v, want nil after Close", err)
	}
	mt.runErr <- nil // for the cleanup
	dels := f.callsOf("DeletePortMapping")
	if len(dels) != 2 || dels[0].Args["NewExternalPort"] != "7000" || dels[0].Args["NewProtocol"] != "TCP" ||
		dels[1].Args["NewExternalPort"] != "7001" || dels[1].Args["NewProtocol"] != "UDP" {
		t.Errorf("DeletePortMapping calls %v", dels)
	}
	if n := f.numMappings(); n != 0 {
		t.Errorf("gateway still has %d mappings", n)
	}
	checkMappings(t, mt.changes.wait(t, 2))
	checkMappings(t, mt.m.Mappings())
	if err := mt.m.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := mt.m.Run(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}

// A gateway that stops answering keeps its mappings published while one
// re-discovery is pending; they are withdrawn when re-discovery fails, and
// re-created when the gateway answers again. Waits back off.
func TestMapperGatewayStopsAnswering(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	mt := startMapper(t, Config{RootURL: f.rootURL(), CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)

	f.set(func(f *fakeIGD) { f.failNext = 1_000_000 })
	mt.clock.fire(t) // the check's GetExternalIPAddress fails
	mt.clock.expectTimer(t, time.Second)
	if n := mt.changes.count(); n != 1 {
		t.Errorf("%d reports after one failed request, want 1", n)
	}
	descriptions := len(f.callsOf("description"))

	mt.clock.fire(t) // re-discovery fails
	checkMappings(t, mt.changes.wait(t, 2))
	mt.clock.expectTimer(t, 2*time.Second)
	mt.clock.fire(t)
	mt.clock.expectTimer(t, 4*time.Second)
	if n := len(f.callsOf("description")); n != descriptions+2 {
		t.Errorf("%d description fetches while down, want 2", n-descriptions)
	}

	f.set(func(f *fakeIGD) { f.failNext = 0; clear(f.mappings) })
	mt.clock.fire(t)
	checkMappings(t, mt.changes.wait(t, 3), bothMapped...)
	checkGatewayHas(t, f, "3600")
	mt.clock.expectTimer(t, 10*time.Second)
}

// One failed request costs one quick re-discovery and no report.
func TestMapperTransientFailure(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	mt := startMapper(t, Config{RootURL: f.rootURL(), CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
	f.set(func(f *fakeIGD) { f.failNext = 1 })
	mt.clock.fire(t)
	mt.clock.expectTimer(t, time.Second)
	mt.clock.fire(t)
	mt.clock.expectTimer(t, 10*time.Second)
	if n := mt.changes.count(); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
	checkGatewayHas(t, f, "3600")
}

func TestMapperExternalAddressChange(t *testing.T) {
	f := newFakeIGD(t, ServiceWANPPPConnection1)
	mt := startMapper(t, Config{RootURL: f.rootURL(), CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
	f.set(func(f *fakeIGD) { f.extIP = "198.0.2.10" })
	mt.clock.fire(t)
	checkMappings(t, mt.changes.wait(t, 2),
		mapping("tcp", "127.0.0.1:7000", "198.0.2.10:7000"),
		mapping("udp", "127.0.0.1:7001", "198.0.2.10:7001"))
	if n := len(f.callsOf("AddPortMapping")); n != 4 {
		t.Errorf("%d AddPortMapping calls, want 4 (mappings re-created)", n)
	}
}

// Without a gateway the Mapper retries with backoff and reports nothing.
func TestMapperNoGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mt := startMapper(t, Config{RootURL: "http://" + addr + "/rootDesc.xml"}, wantTCP)
	for _, want := range []time.Duration{1, 2, 4, 8} {
		if d := mt.clock.fire(t); d != want*time.Second {
			t.Fatalf("retry after %v, want %v", d, want*time.Second)
		}
	}
	if n := mt.changes.count(); n != 0 {
		t.Errorf("%d reports, want none", n)
	}
}

// A mapping the gateway refuses is retried at every check; the others work.
func TestMapperRefusedMapping(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)
	// 606 Action not authorized, as miniupnpd answers for a port its rules deny.
	f.set(func(f *fakeIGD) {
		f.answers["AddPortMapping"] = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError><errorCode>606</errorCode><errorDescription>Action not authorized</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
	})
	mt := startMapper(t, Config{RootURL: f.rootURL(), CheckInterval: 10 * time.Second}, wantTCP, wantUDP)
	mt.clock.expectTimer(t, 10*time.Second)
	if n := mt.changes.count(); n != 0 {
		t.Fatalf("%d reports while refused", n)
	}
	f.set(func(f *fakeIGD) { delete(f.answers, "AddPortMapping") })
	mt.clock.fire(t)
	checkMappings(t, mt.changes.wait(t, 1), bothMapped...)
}

func TestMapperLifecycle(t *testing.T) {
	f := newFakeIGD(t, ServiceWANIPConnection1)

	t.Run("close before run", func(t *testing.T) {
		m, err := NewMapper(Config{RootURL: f.rootURL()}, []Wanted{wantTCP}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Run = %v, want ErrClosed", err)
		}
	})

	t.Run("context ends", func(t *testing.T) {
		clock := newFakeClock()
		m, err := NewMapper(Config{RootURL: f.rootURL(), Now: clock.Now, After: clock.After}, []Wanted{wantTCP}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		clock.waitTimer(t)
		if len(m.Mappings()) != 1 {
			t.Errorf("Mappings = %v", m.Mappings())
		}
		if err := m.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("second Run = %v", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		// The mapping stays until Close deletes it.
		if f.numMappings() != 1 {
			t.Errorf("gateway has %d mappings after Run ended, want 1", f.numMappings())
		}
		if err := m.Close(t.Context()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if f.numMappings() != 0 {
			t.Errorf("gateway has %d mappings after Close, want 0", f.numMappings())
		}
	})

	t.Run("close bounded by ctx", func(t *testing.T) {
		hang := newFakeIGD(t, ServiceWANIPConnection1)
		clock := newFakeClock()
		m, err := NewMapper(Config{RootURL: hang.rootURL(), Now: clock.Now, After: clock.After}, []Wanted{wantTCP}, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		clock.waitTimer(t)
		hang.set(func(f *fakeIGD) { f.hang = true })
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = m.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Errorf("Close = %v after %v, want DeadlineExceeded after 200ms", err, time.Since(start))
		}
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestNewMapperRejects(t *testing.T) {
	for _, w := range []Wanted{
		{Proto: "sctp", Internal: netip.MustParseAddrPort("0.0.0.0:7000")},
		{Proto: "tcp", Internal: netip.MustParseAddrPort("[2001:db8::1]:7000")},
		{Proto: "tcp", Internal: netip.MustParseAddrPort("0.0.0.0:0")},
	} {
		if _, err := NewMapper(Config{}, []Wanted{w}, nil); err == nil {
			t.Errorf("NewMapper(%v): no error", w)
		}
	}
	m, err := NewMapper(Config{}, []Wanted{wantTCP, {Proto: "TCP", Internal: netip.MustParseAddrPort("0.0.0.0:7000")}, wantUDP}, nil)
	if err != nil || len(m.entries) != 2 {
		t.Errorf("NewMapper with a duplicate: %v, %d entries, want 2", err, len(m.entries))
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}
