package actors

import (
	"fmt"
	"strconv"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// supervisor is the root actor of a node. It spawns the listeners, owns the registry
// NodeID → peer actor, and routes connections and requests to the right peer.
type supervisor struct {
	n            *node
	peers        map[identity.NodeID]*actor.PID
	listeners    []*actor.PID
	spawned      int
	shuttingDown bool
}

func newSupervisor(n *node) actor.Producer {
	return func() actor.Receiver {
		return &supervisor{n: n, peers: make(map[identity.NodeID]*actor.PID)}
	}
}

func (s *supervisor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case actor.Started:
		for i, ln := range s.n.cfg.Listeners {
			pid := c.SpawnChild(newListener(s.n, ln, c.PID()), "listener", spawnOpts(s.n.log, strconv.Itoa(i))...)
			s.listeners = append(s.listeners, pid)
		}
		s.n.rendezvousPID.Store(c.SpawnChild(newRendezvousActor(s.n), "rendezvous", spawnOpts(s.n.log, "0")...))
		if s.n.cfg.Prober != nil || s.n.cfg.UPnP != nil {
			pid := c.SpawnChild(newNATActor(s.n), "nat", spawnOpts(s.n.log, "0")...)
			s.n.natPID.Store(pid)
		}
		if s.n.cfg.Bootstrap != nil || len(s.n.cfg.Contacts) > 0 {
			pid := c.SpawnChild(newBootstrapActor(s.n, s.n.cfg.Bootstrap, c.PID()), "bootstrap", spawnOpts(s.n.log, "0")...)
			s.n.bootstrap.Store(pid)
		}
		if b := s.n.cfg.Beacons; len(b) > 0 {
			// Stopped with the listeners at shutdown: no new peers once we leave.
			pid := c.SpawnChild(newBeaconActor(s.n, b, c.PID(), s.n.cfg.BeaconTCPPort, s.n.cfg.BeaconQUICPort), "beacon", spawnOpts(s.n.log, "0")...)
			s.listeners = append(s.listeners, pid)
		}
	case actor.Stopped, actor.Initialized:
	case ConnectPeer:
		switch {
		case s.shuttingDown:
			msg.Result <- ErrClosed
		case msg.Contact.ID == s.n.self:
			msg.Result <- ErrSelf
		case msg.Contact.ID.IsZero():
			msg.Result <- fmt.Errorf("connecting: %w: zero NodeID", identity.ErrBadNodeID)
		case !s.n.cfg.Policy.Allowed(msg.Contact.ID):
			msg.Result <- fmt.Errorf("connecting to %s: %w", msg.Contact.ID.Short(), ErrBlocked)
		default:
			c.Send(s.peer(c, msg.Contact.ID), msg)
		}
	case DisconnectPeer:
		pid := s.peers[msg.ID]
		if pid == nil || s.shuttingDown {
			msg.Result <- ErrNotConnected
			return
		}
		c.Send(pid, msg)
	case PeerSeen:
		id := msg.Contact.ID
		if s.shuttingDown || id == s.n.self || id.IsZero() {
			return
		}
		if !s.n.cfg.Policy.Allowed(id) {
			s.n.log.Debug("ignoring a blocked peer", "peer", id.Short(), "via", msg.Via)
			return
		}
		if pid := s.n.bootstrap.Load(); pid != nil {
			c.Send(pid, contactsHeard{contacts: []transport.Contact{msg.Contact}})
		}
		s.n.log.Debug("peer seen", "peer", id.Short(), "via", msg.Via)
		// Connect, unless it is connected already (the peer actor answers at once).
		c.Send(s.peer(c, id), ConnectPeer{Contact: msg.Contact, Result: make(chan error, 1)})
	case InboundConn:
		id := msg.Conn.PeerID()
		switch {
		case s.shuttingDown:
			msg.Conn.Close()
		case id == s.n.self:
			s.n.log.Warn("closing a connection to ourselves", "addr", msg.Conn.RemoteAddr())
			msg.Conn.Close()
		case !s.n.cfg.Policy.Allowed(id) || !s.n.cfg.Policy.AllowedAddr(transport.AddrPortOf(msg.Conn.RemoteAddr()).Addr()):
			// Checked again here: a block may have come in during the handshake.
			s.n.refused.refuse(s.n.log, s.n.clock.Now(), RefusedBlacklist, "peer", id.Short(), "addr", msg.Conn.RemoteAddr())
			msg.Conn.Close()
		default:
			c.Send(s.peer(c, id), msg)
		}
	case relayOut:
		if pid := s.peers[msg.to]; pid != nil && !s.shuttingDown {
			c.Send(pid, msg)
		}
	case punchedConn:
		id := msg.conn.PeerID()
		if s.shuttingDown || !s.n.cfg.Policy.Allowed(id) || !s.n.cfg.Policy.AllowedAddr(transport.AddrPortOf(msg.conn.RemoteAddr()).Addr()) {
			msg.conn.Close()
			return
		}
		c.Send(s.peer(c, id), msg)
	case countPeers:
		msg.result <- len(s.peers)
	case peerIdle:
		if pid := s.peers[msg.id]; pid != nil && pid.Equals(msg.pid) {
			delete(s.peers, msg.id)
			// Wait for it: a second poison pill (ours at shutdown) queued behind the
			// first would never be answered, and shutdown would wait forever. A
			// retired peer only forwards, so this is quick.
			<-c.Engine().Poison(pid).Done()
		}
	case countConns:
		if pid := s.peers[msg.id]; pid != nil {
			c.Send(pid, msg)
		} else {
			msg.result <- 0
		}
	case Shutdown:
		s.shutdown(c, msg)
	default:
		s.n.log.Warn("supervisor: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
}

// peer returns the actor for id, spawning it on first use.
func (s *supervisor) peer(c *actor.Context, id identity.NodeID) *actor.PID {
	if pid := s.peers[id]; pid != nil {
		return pid
	}
	s.spawned++
	pid := c.SpawnChild(newPeer(s.n, id), "peer", spawnOpts(s.n.log, id.String()+"."+strconv.Itoa(s.spawned))...)
	s.peers[id] = pid
	return pid
}

// shutdown stops the listeners (waiting for their handshakes, so no connection
// arrives later), then asks every peer to say Goodbye and closes msg.Done once all are
// through or Grace has passed.
func (s *supervisor) shutdown(c *actor.Context, msg Shutdown) {
	s.shuttingDown = true
	for _, pid := range s.listeners {
		<-c.Engine().Poison(pid).Done()
	}
	var dones []chan struct{}
	for _, pid := range s.peers {
		d := make(chan struct{})
		dones = append(dones, d)
		c.Send(pid, peerShutdown{done: d})
	}
	s.n.wg.Add(1)
	go func() {
		defer s.n.wg.Done()
		defer close(msg.Done)
		timeout := time.NewTimer(msg.Grace)
		defer timeout.Stop()
		for _, d := range dones {
			select {
			case <-d:
			case <-timeout.C:
				return
			}
		}
	}()
}
