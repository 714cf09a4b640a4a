package actors

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/transport"
)

// listener is the actor for one transport listener. Its accept loop runs TLS
// handshakes in goroutines, each bounded by HandshakeTimeout, at most
// MaxPendingHandshakes at once. A connection is closed at once, before any
// handshake, when that many are in progress, when the node holds
// Limits.MaxConnections, or when its IP address is over Limits.SourceRate: a flood of
// half-open connections costs sockets, not goroutines, memory or TLS work.
// Handshaken connections go to the Supervisor.
type listener struct {
	n          *node
	ln         transport.Listener
	supervisor *actor.PID
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	pending    atomic.Int32
}

func newListener(n *node, ln transport.Listener, supervisor *actor.PID) actor.Producer {
	return func() actor.Receiver {
		return &listener{n: n, ln: ln, supervisor: supervisor}
	}
}

func (l *listener) Receive(c *actor.Context) {
	switch c.Message().(type) {
	case actor.Started:
		var ctx context.Context
		ctx, l.cancel = context.WithCancel(l.n.ctx)
		l.n.emit.Control(ListenerStarted{Endpoint: l.ln.Endpoint()})
		l.n.log.Info("listening", "endpoint", l.ln.Endpoint())
		l.wg.Add(1)
		go l.acceptLoop(ctx)
	case actor.Stopped:
		// Stop accepting, abort handshakes in flight, and wait for them: a connection
		// handed to the Supervisor after this would find no one to take it.
		if l.cancel != nil {
			l.cancel()
		}
		l.ln.Close()
		l.wg.Wait()
	}
}

func (l *listener) acceptLoop(ctx context.Context) {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		in, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.n.log.Warn("accept failed", "endpoint", l.ln.Endpoint(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return
			}
		}
		backoff = 0
		if reason, args := l.admit(in); reason != "" {
			l.n.refused.refuse(l.n.log, l.n.clock.Now(), reason, append(args, "endpoint", l.ln.Endpoint())...)
			in.Close()
			continue
		}
		l.pending.Add(1)
		l.wg.Add(1)
		go l.handshake(ctx, in)
	}
}

// admit says why in must be refused before its handshake ("" if not), with what to
// log.
func (l *listener) admit(in transport.Incoming) (string, []any) {
	ip := transport.AddrPortOf(in.RemoteAddr()).Addr()
	lim := l.n.cfg.Limits
	pending := int(l.pending.Load())
	// The address's own limits come first: one address must not fill the node's
	// handshake slots, which every other address shares.
	switch {
	case !l.n.cfg.Policy.AllowedAddr(ip):
		return RefusedBlacklist, []any{"addr", ip}
	case !l.n.sources.allow(ip, l.n.clock.Now()):
		return RefusedSourceRate, []any{"addr", ip, "per_second", lim.SourceRate}
	case pending >= l.n.cfg.MaxPendingHandshakes:
		return RefusedPendingHandshakes, []any{"limit", l.n.cfg.MaxPendingHandshakes}
	case lim.MaxConnections >= 0 && int(l.n.open.Load())+pending >= lim.MaxConnections:
		return RefusedMaxConnections, []any{"limit", lim.MaxConnections}
	case lim.SourceRate >= 0 && !l.n.sources.startHandshake(ip, perSourceHandshakes(l.n.cfg.MaxPendingHandshakes)):
		return RefusedSourcePending, []any{"addr", ip, "limit", perSourceHandshakes(l.n.cfg.MaxPendingHandshakes)}
	}
	return "", nil
}

// perSourceHandshakes is how many of the handshake slots one address may hold: a
// quarter, so that at least four addresses are needed to fill them.
func perSourceHandshakes(slots int) int { return max(slots/4, 1) }

func (l *listener) handshake(ctx context.Context, in transport.Incoming) {
	defer l.wg.Done()
	defer l.pending.Add(-1)
	if l.n.cfg.Limits.SourceRate >= 0 {
		defer l.n.sources.endHandshake(transport.AddrPortOf(in.RemoteAddr()).Addr())
	}
	ctx, cancel := context.WithTimeout(ctx, l.n.cfg.HandshakeTimeout)
	defer cancel()
	conn, err := in.Handshake(ctx)
	if errors.Is(err, transport.ErrBlocked) {
		l.n.refused.refuse(l.n.log, l.n.clock.Now(), RefusedBlacklist, "err", err)
		return
	}
	if err != nil {
		l.n.log.Debug("inbound handshake failed", "err", err)
		return
	}
	l.n.engine.Send(l.supervisor, InboundConn{Conn: conn})
}
