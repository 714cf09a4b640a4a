package actors

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Ladder steps, in the order they are tried; each name is also the connection kind
// that PeerConnected and Peers report when that step wins.
const (
	StepTCPDirect  = "tcp-direct"
	StepTCPUPnP    = "tcp-upnp"
	StepTCPPunch   = "tcp-punch"
	StepQUICDirect = "quic-direct"
	StepQUICPunch  = "quic-punch"
)

// Puncher opens a connection through NATs by hole punching, for the NAT layer to
// provide. Without one, the punch steps are skipped.
type Puncher interface {
	// Punch connects to c over proto ("tcp" or "quic") through its reflected
	// endpoints.
	Punch(ctx context.Context, proto string, c transport.Contact) (transport.Conn, error)
}

// StepResult says how one ladder step went.
type StepResult struct {
	// Step is the step's name, e.g. "tcp-direct".
	Step string
	// Skipped, if not empty, says why the step did not run.
	Skipped string
	// Err is why the step failed, if it ran and failed.
	Err error
	// Took is how long the step ran.
	Took time.Duration
}

// String says how the step went, e.g. "tcp-direct: skipped (no tcp candidates)".
func (r StepResult) String() string {
	switch {
	case r.Skipped != "":
		return r.Step + ": skipped (" + r.Skipped + ")"
	case r.Err != nil:
		return fmt.Sprintf("%s: failed after %v: %v", r.Step, r.Took.Round(time.Millisecond), r.Err)
	default:
		return fmt.Sprintf("%s: connected in %v", r.Step, r.Took.Round(time.Millisecond))
	}
}

// LadderError is returned when no step of the ladder connected. It lists every step.
type LadderError struct {
	Peer  identity.NodeID
	Steps []StepResult
}

// Error lists every step and why it did not connect.
func (e *LadderError) Error() string {
	parts := make([]string, len(e.Steps))
	for i, s := range e.Steps {
		parts[i] = s.String()
	}
	return fmt.Sprintf("connecting to %s: every step failed: %s", e.Peer.Short(), strings.Join(parts, "; "))
}

// Unwrap returns the steps' errors, so errors.As finds e.g. a WrongPeerError.
func (e *LadderError) Unwrap() []error {
	var errs []error
	for _, s := range e.Steps {
		if s.Err != nil {
			errs = append(errs, s.Err)
		}
	}
	return errs
}

// ladderStep is one rung: which endpoints it tries and how.
type ladderStep struct {
	name, proto string
	candidates  func(transport.Contact) []transport.Endpoint
	punch       bool // through the Puncher instead of a dial
}

var ladder = []ladderStep{
	{name: StepTCPDirect, proto: "tcp", candidates: func(c transport.Contact) []transport.Endpoint { return c.Endpoints }},
	{name: StepTCPUPnP, proto: "tcp", candidates: func(c transport.Contact) []transport.Endpoint { return c.UPnP }},
	{name: StepTCPPunch, proto: "tcp", candidates: func(c transport.Contact) []transport.Endpoint { return c.Reflected }, punch: true},
	// QUIC has no step of its own for UPnP: a UDP mapping is as direct as it gets.
	{name: StepQUICDirect, proto: "quic", candidates: func(c transport.Contact) []transport.Endpoint {
		return append(slices.Clone(c.Endpoints), c.UPnP...)
	}},
	{name: StepQUICPunch, proto: "quic", candidates: func(c transport.Contact) []transport.Endpoint { return c.Reflected }, punch: true},
}

// climb runs the ladder for c: each step in order, each bounded by StepTimeout,
// skipping steps with nothing to try. It returns the first connection, the winning
// step, the results of the steps before it and how long the winning step ran, or a
// *LadderError.
func (n *node) climb(ctx context.Context, c transport.Contact) (transport.Conn, string, []StepResult, time.Duration, error) {
	var results []StepResult
	for _, step := range ladder {
		r := StepResult{Step: step.name}
		var cands []transport.Endpoint
		blocked := 0
		for _, ep := range step.candidates(c) {
			switch {
			case ep.Proto != step.proto:
			case !n.cfg.Policy.AllowedAddr(ep.Addr.Addr()):
				blocked++ // BlacklistPrefixes: not dialled, not punched
			default:
				cands = append(cands, ep)
			}
		}
		switch {
		case n.protos[step.proto] == nil:
			r.Skipped = step.proto + " is off here"
		case len(cands) == 0 && blocked > 0:
			r.Skipped = fmt.Sprintf("%d %s candidates, all in blocked prefixes", blocked, step.proto)
		case len(cands) == 0:
			r.Skipped = "no " + step.proto + " candidates"
		case step.punch && n.cfg.Puncher == nil:
			r.Skipped = "no hole punching available"
		}
		if r.Skipped != "" {
			results = append(results, r)
			continue
		}
		n.stats.attempt(step.name)
		start := n.clock.Now()
		budget := n.cfg.StepTimeout
		if !step.punch && n.allForeignLAN(cands, c) {
			// Private addresses of another network: reachable only over a routed
			// LAN or VPN, which answers quickly. Routers often just drop the rest.
			budget = min(budget, foreignLANBudget)
		}
		deadline := start.Add(budget)
		stepCtx, cancel := context.WithDeadline(ctx, deadline)
		var conn transport.Conn
		var err error
		if step.punch {
			conn, err = n.cfg.Puncher.Punch(stepCtx, step.proto, c)
		} else {
			conn, err = n.dialFirst(stepCtx, transport.SortLANFirst(cands), c.ID)
		}
		// The transports set their socket deadlines from ctx, so a step that ran out of
		// budget may fail with their timeout error before ctx itself reports it.
		timedOut := stepCtx.Err() != nil || !n.clock.Now().Before(deadline)
		cancel()
		r.Took = n.clock.Now().Sub(start)
		if err == nil {
			kind := step.name
			if step.punch {
				kind = n.punchKind(step.proto, c)
			}
			return conn, kind, results, r.Took, nil
		}
		if ctx.Err() != nil {
			return nil, "", nil, 0, ErrClosed
		}
		if timedOut {
			err = fmt.Errorf("timed out after %v: %w", budget, err)
		}
		r.Err = err
		results = append(results, r)
	}
	return nil, "", nil, 0, &LadderError{Peer: c.ID, Steps: results}
}

// dialFirst dials eps happy-eyeballs style: the next attempt starts after DialStagger
// or when the previous one fails, and the first verified connection wins. Losers are
// closed. The error joins every attempt's error.
func (n *node) dialFirst(ctx context.Context, eps []transport.Endpoint, want identity.NodeID) (transport.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		conn transport.Conn
		err  error
	}
	results := make(chan result, len(eps))
	next, running := 0, 0
	startNext := func() {
		ep := eps[next]
		next++
		running++
		go func() {
			c, err := n.protos[ep.Proto].Dial(ctx, ep, want)
			results <- result{c, err}
		}()
	}
	stagger := time.NewTimer(n.cfg.DialStagger)
	defer stagger.Stop()
	startNext()
	var errs []error
	for running > 0 {
		select {
		case r := <-results:
			running--
			if r.err == nil {
				cancel()
				for ; running > 0; running-- {
					if late := <-results; late.conn != nil {
						late.conn.Close()
					}
				}
				if ctx := n.ctx; ctx.Err() != nil {
					r.conn.Close()
					return nil, ErrClosed
				}
				return r.conn, nil
			}
			errs = append(errs, r.err)
			if next < len(eps) {
				startNext()
				stagger.Reset(n.cfg.DialStagger)
			}
		case <-stagger.C:
			if next < len(eps) {
				startNext()
				stagger.Reset(n.cfg.DialStagger)
			}
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// foreignLANBudget bounds a direct step whose every candidate is a private address
// outside our own networks.
const foreignLANBudget = 500 * time.Millisecond

// allForeignLAN reports whether every endpoint is a LAN address (private, link-local,
// CGNAT; not loopback) of another network than ours: outside the networks of our own
// interfaces, or, since most home LANs number themselves alike (192.168.0.0/24), any
// LAN address of a peer whose public addresses are not ours (it sits behind another
// router).
func (n *node) allForeignLAN(eps []transport.Endpoint, c transport.Contact) bool {
	if len(eps) == 0 {
		return false
	}
	for _, ep := range eps {
		if a := ep.Addr.Addr().Unmap(); !transport.IsLAN(a) || a.IsLoopback() {
			return false
		}
	}
	if n.behindAnotherRouter(c) {
		return true
	}
	if n.cfg.LocalPrefixes == nil {
		return false
	}
	local := n.cfg.LocalPrefixes()
	for _, ep := range eps {
		a := ep.Addr.Addr().Unmap()
		for _, p := range local {
			if p.Contains(a) {
				return false
			}
		}
	}
	return true
}

// behindAnotherRouter reports whether c's public addresses (reflected, UPnP) and ours
// (STUN, reflected) are both known and share none: the peer is not on our LAN.
func (n *node) behindAnotherRouter(c transport.Contact) bool {
	public := func(eps ...[]transport.Endpoint) map[netip.Addr]bool {
		set := map[netip.Addr]bool{}
		for _, list := range eps {
			for _, ep := range list {
				if a := ep.Addr.Addr().Unmap(); !transport.IsLAN(a) && !a.IsLoopback() {
					set[a] = true
				}
			}
		}
		return set
	}
	theirs := public(c.Reflected, c.UPnP)
	if len(theirs) == 0 {
		return false
	}
	ours := public(n.natInfo().STUN, n.reflected.endpoints())
	if len(ours) == 0 {
		return false
	}
	for a := range theirs {
		if ours[a] {
			return false
		}
	}
	return true
}
