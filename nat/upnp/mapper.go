package upnp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// otherPortTries is how many random external ports the Mapper tries after the
// preferred one conflicts, on gateways without AddAnyPortMapping.
const otherPortTries = 3

// Wanted is a listen port to keep mapped.
type Wanted struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Internal is the listener's address. An unspecified address (0.0.0.0 or ::,
	// a listener on every interface) stands for our address toward the gateway,
	// [Gateway.LocalAddr]; other addresses must be IPv4.
	Internal netip.AddrPort
}

// Mapping is a port mapping in place on the gateway.
type Mapping struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Internal is the LAN address the gateway forwards to.
	Internal netip.AddrPort
	// External is the gateway's external address and the mapped port: the address
	// peers on the internet dial.
	External netip.AddrPort
}

// Mapper keeps a mapping on the gateway for each wanted listen port: the same
// external port as the internal one where the gateway allows, another one if it
// reports a conflict (UPnP error 718). It renews each mapping at half its lease,
// checks every [Config.CheckInterval] that the gateway still has them and what its
// external address is, re-creates the mappings a restarted gateway forgot,
// re-discovers a gateway that stopped answering (with backoff from 1 s to 5 min),
// and deletes the mappings on [Mapper.Close].
//
// Start it with [Mapper.Run] in a goroutine; [Mapper.Mappings] and
// [Mapper.Close] may be called from any goroutine.
type Mapper struct {
	cfg      Config
	onChange func([]Mapping)

	// Owned by the Run goroutine, then by Close once Run has returned.
	entries       []*entry
	gw            *Gateway
	lost          bool // gw stopped answering: re-discover before using it
	extIP         netip.Addr
	permanentOnly bool // gw answered 725 OnlyPermanentLeasesSupported
	nextCheck     time.Time
	failures      int // consecutive failed steps, for the backoff

	mu        sync.Mutex
	published []Mapping
	closed    bool
	running   bool
	cancel    context.CancelFunc
	done      chan struct{}
}

// entry is the state of one wanted mapping.
type entry struct {
	want     Wanted         // Proto lower case
	internal netip.AddrPort // want.Internal with the address resolved
	external uint16         // mapped external port if active, else the one to try first
	active   bool
	renewAt  time.Time // zero for a permanent lease
}

// NewMapper returns a Mapper for the listen ports in want; it does nothing until
// [Mapper.Run]. onChange, if not nil, is called from Run's goroutine (and from
// Close) with the mappings in place whenever they change, an empty list when they
// are lost or deleted; it must not block for long nor call Close.
func NewMapper(cfg Config, want []Wanted, onChange func([]Mapping)) (*Mapper, error) {
	m := &Mapper{cfg: cfg.withDefaults(), onChange: onChange}
	seen := map[Wanted]bool{}
	for _, w := range want {
		p, err := soapProtocol(w.Proto)
		if err != nil {
			return nil, err
		}
		w.Proto = strings.ToLower(p)
		ip := w.Internal.Addr().Unmap()
		if w.Internal.Port() == 0 || (ip.IsValid() && !ip.IsUnspecified() && !ip.Is4()) {
			return nil, fmt.Errorf("upnp: wanted %s %v: need an IPv4 or unspecified address and a port", w.Proto, w.Internal)
		}
		if ip.IsValid() {
			w.Internal = netip.AddrPortFrom(ip, w.Internal.Port())
		}
		if seen[w] {
			continue
		}
		seen[w] = true
		m.entries = append(m.entries, &entry{want: w, external: w.Internal.Port()})
	}
	return m, nil
}

// Mappings returns the mappings in place now.
func (m *Mapper) Mappings() []Mapping {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.published)
}

// Run discovers the gateway and keeps the mappings until ctx ends or Close is
// called. It returns ctx.Err() when ctx ends (the mappings stay until their leases
// run out, or until Close deletes them) and nil after Close. Run may be called
// once; after Close it returns [ErrClosed] at once.
func (m *Mapper) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.running {
		m.mu.Unlock()
		return errors.New("upnp: Mapper.Run called twice")
	}
	m.running = true
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	m.mu.Unlock()
	defer close(m.done)
	defer cancel()

	for {
		wait := m.step(ctx)
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-m.cfg.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
	}
	return parent.Err()
}

// Close stops Run, waits for it to return, and deletes the mappings from the
// gateway, all bounded by ctx. It returns the errors of the deletions. Close is
// idempotent: later calls return nil and do nothing.
func (m *Mapper) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("upnp: closing the mapper: Run did not stop: %w", ctx.Err())
		}
	}
	// Run has returned, or never ran: the loop state is ours now.
	var errs []error
	for _, e := range m.entries {
		if !e.active || m.gw == nil {
			continue
		}
		err := m.call(ctx, func(ctx context.Context) error { return m.gw.DeleteMapping(ctx, e.want.Proto, e.external) })
		if err != nil {
			errs = append(errs, err)
		} else {
			m.cfg.Log.Info("upnp: deleted mapping", "proto", e.want.Proto, "external", e.external)
		}
		e.active = false
	}
	m.publish()
	return errors.Join(errs...)
}

// step does whatever is due now and returns how long to wait for the next step.
func (m *Mapper) step(ctx context.Context) time.Duration {
	now := m.cfg.Now()
	force := false // (re)create every mapping
	if m.gw == nil || m.lost {
		gw, err := Discover(ctx, m.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			m.failures++
			wait := backoff(m.failures)
			m.cfg.Log.Warn("upnp: no gateway", "err", err, "retry_in", wait)
			for _, e := range m.entries {
				e.active = false
			}
			m.publish()
			return wait
		}
		m.adopt(gw)
		force = true
	}

	check := force || !now.Before(m.nextCheck)
	if check {
		if !force {
			var ip netip.Addr
			err := m.call(ctx, func(ctx context.Context) (err error) { ip, err = m.gw.ExternalIP(ctx); return err })
			if err != nil {
				return m.lose(ctx, err)
			}
			if ip != m.extIP {
				m.cfg.Log.Info("upnp: external address changed; re-creating mappings", "old", m.extIP, "new", ip)
				m.extIP = ip
				force = true
			}
		}
	}

	for _, e := range m.entries {
		redo := force || !e.active || (!e.renewAt.IsZero() && !now.Before(e.renewAt))
		if !redo && check {
			var got netip.AddrPort
			var ok bool
			err := m.call(ctx, func(ctx context.Context) (err error) {
				got, ok, err = m.gw.GetMapping(ctx, e.want.Proto, e.external)
				return err
			})
			switch {
			case ctx.Err() != nil:
				return 0
			case err != nil:
				// Some gateways answer this action badly; renewing is harmless.
				m.cfg.Log.Debug("upnp: checking mapping; renewing it", "proto", e.want.Proto, "external", e.external, "err", err)
				redo = true
			case !ok || got != e.internal:
				m.cfg.Log.Info("upnp: the gateway lost a mapping (restarted?); re-creating it",
					"proto", e.want.Proto, "external", e.external, "gateway_has", got)
				redo = true
			}
		}
		if !redo {
			continue
		}
		if err := m.establish(ctx, e, now); err != nil {
			return m.lose(ctx, err)
		}
	}
	if ctx.Err() != nil {
		return 0
	}
	if check {
		// After the mappings: a 725 answer may just have changed the interval.
		m.nextCheck = now.Add(m.checkInterval())
	}
	m.failures = 0
	m.publish()
	return m.nextWait(now)
}

// adopt starts using gw, found by a (re-)discovery.
func (m *Mapper) adopt(gw *Gateway) {
	old := m.gw
	switch {
	case old == nil:
		m.cfg.Log.Info("upnp: found gateway", "gateway", gw.String(), "external", gw.externalIP, "local", gw.LocalAddr())
	case old.RootURL() != gw.RootURL():
		m.cfg.Log.Info("upnp: switched to another gateway", "gateway", gw.String(), "external", gw.externalIP)
		m.permanentOnly = false
	case old.BootID() != gw.BootID():
		m.cfg.Log.Info("upnp: the gateway restarted (new BOOTID)", "gateway", gw.String(), "old", old.BootID(), "new", gw.BootID())
	default:
		m.cfg.Log.Info("upnp: the gateway answers again", "gateway", gw.String())
	}
	if gw.externalIP.IsPrivate() || gw.externalIP.IsLoopback() {
		m.cfg.Log.Warn("upnp: the gateway's external address is not public: another NAT lies beyond it, so its mappings may not be reachable from the internet",
			"external", gw.externalIP)
	}
	m.gw, m.lost, m.extIP = gw, false, gw.externalIP
}

// lose handles a gateway that did not answer (as opposed to refusing an action):
// re-discover it after a backoff. The mappings stay published until a
// re-discovery fails.
func (m *Mapper) lose(ctx context.Context, err error) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	m.lost = true
	m.failures++
	wait := backoff(m.failures)
	m.cfg.Log.Warn("upnp: the gateway stopped answering; re-discovering it", "err", err, "retry_in", wait)
	return wait
}

// establish creates or renews e's mapping, on another external port if its port
// conflicts. It returns an error only if the gateway did not answer; a refusal is
// logged and leaves e inactive until the next step that retries it.
func (m *Mapper) establish(ctx context.Context, e *entry, now time.Time) error {
	e.internal = e.want.Internal
	if ip := e.internal.Addr(); !ip.IsValid() || ip.IsUnspecified() {
		e.internal = netip.AddrPortFrom(m.gw.LocalAddr(), e.want.Internal.Port())
	}
	port := e.external
	err := m.add(ctx, e, port, now)
	if errors.Is(err, ErrConflict) {
		m.cfg.Log.Info("upnp: external port taken; trying another", "proto", e.want.Proto, "port", port)
		err = m.addOtherPort(ctx, e, port, now)
	}
	var refused *ActionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		if e.active {
			m.cfg.Log.Warn("upnp: lost mapping", "proto", e.want.Proto, "external", e.external, "err", err)
		} else {
			m.cfg.Log.Warn("upnp: cannot map port", "proto", e.want.Proto, "internal", e.internal, "err", err)
		}
		e.active = false
		return nil
	default:
		return err
	}
}

// add maps e to external port, asking for a permanent lease if the gateway
// supports only those.
func (m *Mapper) add(ctx context.Context, e *entry, port uint16, now time.Time) error {
	return m.withLease(ctx, func(ctx context.Context, lease time.Duration) error {
		err := m.gw.AddMapping(ctx, e.want.Proto, e.internal, port, lease, m.cfg.Description)
		if err == nil {
			m.activate(e, port, lease, now)
		}
		return err
	})
}

// addOtherPort maps e to some port other than the conflicting one: the one a
// WANIPConnection:2 gateway picks, else a few random ones.
func (m *Mapper) addOtherPort(ctx context.Context, e *entry, conflicting uint16, now time.Time) error {
	var supported bool
	err := m.withLease(ctx, func(ctx context.Context, lease time.Duration) error {
		port, ok, err := m.gw.addAnyMapping(ctx, e.want.Proto, e.internal, conflicting, lease, m.cfg.Description)
		supported = ok
		if ok && err == nil {
			m.activate(e, port, lease, now)
		}
		return err
	})
	if supported {
		return err
	}
	err = nil
	for range otherPortTries {
		port := uint16(1024 + rand.N(65536-1024))
		if port == conflicting {
			continue
		}
		err = m.add(ctx, e, port, now)
		var refused *ActionError
		if err == nil || !errors.As(err, &refused) || refused.Code == codeSamePortRequired {
			return err
		}
	}
	return err
}

// withLease runs add with the configured lease, or 0 if the gateway supports only
// permanent leases, learning that from a 725 answer.
func (m *Mapper) withLease(ctx context.Context, add func(ctx context.Context, lease time.Duration) error) error {
	lease := m.lease()
	err := m.call(ctx, func(ctx context.Context) error { return add(ctx, lease) })
	if lease != 0 && errors.Is(err, ErrOnlyPermanentLeases) {
		m.cfg.Log.Info("upnp: the gateway supports only permanent leases; Close deletes them")
		m.permanentOnly = true
		err = m.call(ctx, func(ctx context.Context) error { return add(ctx, 0) })
	}
	return err
}

// activate records that e is mapped to external port port for lease.
func (m *Mapper) activate(e *entry, port uint16, lease time.Duration, now time.Time) {
	if !e.active || e.external != port {
		m.cfg.Log.Info("upnp: mapped port", "proto", e.want.Proto, "internal", e.internal,
			"external", netip.AddrPortFrom(m.extIP, port), "lease", lease)
	} else {
		m.cfg.Log.Debug("upnp: renewed mapping", "proto", e.want.Proto, "external", port, "lease", lease)
	}
	e.active, e.external, e.renewAt = true, port, time.Time{}
	if lease > 0 {
		e.renewAt = now.Add(lease / 2)
	}
}

// call runs one SOAP request bounded by cfg.RequestTimeout.
func (m *Mapper) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	return f(ctx)
}

// lease is the lease to ask for: 0 on a gateway that supports only permanent ones.
func (m *Mapper) lease() time.Duration {
	if m.permanentOnly {
		return 0
	}
	return m.cfg.Lease
}

// checkInterval is the time between checks: cfg.CheckInterval, at most half the
// lease.
func (m *Mapper) checkInterval() time.Duration {
	ci := m.cfg.CheckInterval
	if l := m.lease(); l > 0 && l/2 < ci {
		ci = l / 2
	}
	return ci
}

// nextWait returns the time from now to the next check or renewal.
func (m *Mapper) nextWait(now time.Time) time.Duration {
	next := m.nextCheck
	for _, e := range m.entries {
		if e.active && !e.renewAt.IsZero() && e.renewAt.Before(next) {
			next = e.renewAt
		}
	}
	return max(next.Sub(now), minWait)
}

// publish updates what Mappings returns and tells onChange if it changed.
func (m *Mapper) publish() {
	var cur []Mapping
	for _, e := range m.entries {
		if e.active {
			cur = append(cur, Mapping{Proto: e.want.Proto, Internal: e.internal, External: netip.AddrPortFrom(m.extIP, e.external)})
		}
	}
	m.mu.Lock()
	changed := !slices.Equal(cur, m.published)
	if changed {
		m.published = cur
	}
	m.mu.Unlock()
	if changed && m.onChange != nil {
		m.onChange(slices.Clone(cur))
	}
}

// backoff is the wait after the n-th consecutive failure: 1 s, 2 s, 4 s, … 5 min.
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}
