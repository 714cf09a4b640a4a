package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crust-p2p/crust/sim/vnet"
)

// ProtocolSets are the matrix's protocol choices: TCP alone, QUIC alone, both.
var ProtocolSets = [][]string{{"tcp"}, {"quic"}, {"tcp", "quic"}}

// Matrix runs a Pair for every ordered pair of Kinds, for each protocol set.
type Matrix struct {
	// Kinds are the rows and columns. Default: Kinds.
	Kinds []Kind
	// Protocols are the protocol sets. Default: ProtocolSets.
	Protocols [][]string
	// Seed seeds every pair's network (each pair adds its index).
	Seed uint64
	// Parallel is how many pairs run at once. Default: 8.
	Parallel int
	// StepTimeout bounds each ladder step. Default: Pair's.
	StepTimeout time.Duration
}

// Cell is one pair's outcome and what theory expects of it.
type Cell struct {
	A, B      string
	Protocols string
	Outcome
	// Err is set when the pair could not even run (not a failed connection).
	Err error
	// Possible is Possible's verdict for the pair.
	Possible bool
}

// OK reports whether the cell connected.
func (c Cell) OK() bool { return c.Err == nil && c.Outcome.Err == nil }

// Unexpected reports whether a cell that theory says can connect did not (or one
// that cannot did, which would mean the model or the theory is wrong).
func (c Cell) Unexpected() bool { return c.OK() != c.Possible }

// Result is a matrix run.
type Result struct {
	Kinds     []string
	Protocols []string
	Cells     []Cell
}

// Run runs every cell, at most Parallel at once.
func (m Matrix) Run(ctx context.Context) Result {
	if len(m.Kinds) == 0 {
		m.Kinds = Kinds
	}
	if len(m.Protocols) == 0 {
		m.Protocols = ProtocolSets
	}
	if m.Parallel <= 0 {
		m.Parallel = 8
	}
	var res Result
	for _, k := range m.Kinds {
		res.Kinds = append(res.Kinds, k.Name)
	}
	type job struct {
		i      int
		pair   Pair
		protos string
	}
	var jobs []job
	for _, ps := range m.Protocols {
		res.Protocols = append(res.Protocols, strings.Join(ps, "+"))
		for _, a := range m.Kinds {
			for _, b := range m.Kinds {
				p := Pair{A: a, B: b, Protocols: ps, Seed: m.Seed + uint64(len(jobs)), StepTimeout: m.StepTimeout}
				jobs = append(jobs, job{i: len(jobs), pair: p, protos: strings.Join(ps, "+")})
			}
		}
	}
	res.Cells = make([]Cell, len(jobs))
	sem := make(chan struct{}, m.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := j.pair.Run(ctx)
			res.Cells[j.i] = Cell{
				A: j.pair.A.Name, B: j.pair.B.Name, Protocols: j.protos,
				Outcome: out, Err: err,
				Possible: Possible(j.pair.A, j.pair.B, j.pair.Protocols),
			}
		})
	}
	wg.Wait()
	return res
}

// Possible is the theory crust is held to: whether a node of kind a can get a
// direct connection to one of kind b with protocols.
//   - A peer whose listen ports anyone can reach, a public host or a node behind a
//     UPnP gateway that mapped them, can always be reached: directly (tcp-direct;
//     tcp-upnp or quic-direct to the mapped ports), or by the other side's punch,
//     which meets the listener as it is.
//   - Such a node can also reach anyone. crust's ladder has only A dial, so it is
//     B's open ports that count, not A's; but in the punch steps B sends too, to A's
//     reflected endpoints. Behind UPnP those are the mapped ports (the listen
//     sockets' traffic leaves through the mappings, so STUN saw them there), which
//     let B's packets and SYNs in from any port: A punches as from behind a full
//     cone, which gets through to any kind (rules below).
//   - Two endpoint-independent mappings (every NAT here but the symmetric one, and
//     the firewall, which translates nothing) can always punch: each side's mapping
//     is the one STUN saw, whatever the filtering (RFC 4787, section 4).
//   - An endpoint-dependent mapping (symmetric: a new random port per destination)
//     against an endpoint-independent one: the symmetric side knows where to send,
//     the other side cannot know the port it will come from. If the other side's
//     filtering does not depend on the port (full cone, restricted cone), it lets
//     that port in once it has punched toward the symmetric side's address: any
//     protocol. If it does (port-restricted, firewall), only the birthday punch
//     finds a port, which crust does for QUIC (128 mappings against 4,096 probes).
//   - Two endpoint-dependent mappings: no direct connection (nobody knows a port).
//   - Behind a carrier-grade NAT the two NATs add up: the mapping is
//     endpoint-independent only if both are (the carrier maps the home router's one
//     external endpoint), and the filtering is the stricter of the two (each
//     filters on what the host sent). Port-restricted behind port-restricted is a
//     port-restricted cone to the peer.
func Possible(a, b Kind, protocols []string) bool {
	pa, pb := traversalOf(a), traversalOf(b)
	switch {
	case pa.open || pb.open:
		return true
	case pa.eim && pb.eim:
		return true
	case pa.eim && pa.anyPort, pb.eim && pb.anyPort:
		return true
	case pa.eim || pb.eim:
		return slices.Contains(protocols, "quic")
	}
	return false
}

// traversal is what Possible needs to know of a kind.
type traversal struct {
	// open: anyone can reach the listen ports (a public host, or ports mapped by
	// UPnP).
	open bool
	// eim: the mapping is endpoint-independent, or there is no translation.
	eim bool
	// anyPort: the filtering does not depend on the remote port.
	anyPort bool
}

func traversalOf(k Kind) traversal {
	if k.NAT == nil || k.UPnP {
		return traversal{open: true, eim: true, anyPort: true}
	}
	t := traversal{eim: true, anyPort: true}
	for _, nat := range []*vnet.NATConfig{k.NAT, k.Carrier} {
		if nat == nil {
			continue
		}
		t.eim = t.eim && (nat.FirewallOnly || nat.Mapping == vnet.EndpointIndependent)
		t.anyPort = t.anyPort && nat.Filtering != vnet.AddressAndPortDependent
	}
	return t
}

// Unexpected returns the cells whose outcome differs from Possible's.
func (r Result) Unexpected() []Cell {
	var out []Cell
	for _, c := range r.Cells {
		if c.Unexpected() {
			out = append(out, c)
		}
	}
	return out
}

// cell returns the cell for a, b and protocols.
func (r Result) cell(a, b, protocols string) (Cell, bool) {
	for _, c := range r.Cells {
		if c.A == a && c.B == b && c.Protocols == protocols {
			return c, true
		}
	}
	return Cell{}, false
}

// label is a cell's text in the table: the step that connected, "-" for a failure
// theory expects, "FAIL" for one it does not, "ERROR" if the pair did not run; an
// unexpected success is marked with "!".
func (c Cell) label() string {
	switch {
	case c.Err != nil:
		return "ERROR"
	case c.Outcome.Err != nil && c.Possible:
		return "FAIL"
	case c.Outcome.Err != nil:
		return "-"
	case !c.Possible:
		return c.Kind + "!"
	}
	return c.Kind
}

// Table prints one table per protocol set: A's kind down, B's across, each cell the
// ladder step that connected A to B.
func (r Result) Table() string {
	var b strings.Builder
	const w = 16
	for _, ps := range r.Protocols {
		fmt.Fprintf(&b, "protocols %s (row: A's kind, column: B's kind; '-' no direct connection, as theory says)\n", ps)
		fmt.Fprintf(&b, "%-*s", w, "")
		for _, k := range r.Kinds {
			fmt.Fprintf(&b, "%-*s", w, k)
		}
		b.WriteString("\n")
		for _, a := range r.Kinds {
			fmt.Fprintf(&b, "%-*s", w, a)
			for _, k := range r.Kinds {
				c, _ := r.cell(a, k, ps)
				fmt.Fprintf(&b, "%-*s", w, c.label())
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}
