package crust

import (
	"context"
	"errors"
	"fmt"

	"github.com/crust-p2p/crust/actors"
	"github.com/crust-p2p/crust/transport"
	"github.com/crust-p2p/crust/transport/identity"
)

// Service is a running crust node. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	ident *identity.Identity
	tcp   *transport.TCP
	node  *actors.Node
}

// New starts a Service: it loads or creates the node key, binds the listeners and
// starts the actors. Listen addresses that fail are reported as ListenerFailed events;
// New fails only if none can be bound.
func New(cfg Config) (*Service, error) {
	cfg.setDefaults()
	ident := cfg.Identity
	if ident == nil {
		var err error
		if cfg.DataDir == "" {
			ident, err = identity.Generate()
		} else {
			ident, err = identity.LoadOrCreate(cfg.DataDir)
		}
		if err != nil {
			return nil, err
		}
	}
	tcp, err := transport.NewTCP(transport.TCPConfig{
		Identity:         ident,
		Net:              cfg.Net,
		Clock:            cfg.Clock,
		MaxFrameSize:     cfg.MaxFrameSize,
		HandshakeTimeout: cfg.HandshakeTimeout,
		Log:              cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	listeners, errs := tcp.Listen(context.Background(), cfg.ListenAddrs)
	if len(listeners) == 0 {
		return nil, fmt.Errorf("no listen address could be bound: %v", errs)
	}
	node, err := actors.Start(actors.Config{
		Identity:             ident,
		Transports:           []transport.Transport{tcp},
		Listeners:            listeners,
		Log:                  cfg.Log,
		Clock:                cfg.Clock,
		HandshakeTimeout:     cfg.HandshakeTimeout,
		MaxPendingHandshakes: cfg.MaxPendingHandshakes,
		KeepaliveInterval:    cfg.KeepaliveInterval,
		PeerTimeout:          cfg.PeerTimeout,
		SendQueueMessages:    cfg.SendQueueMessages,
		SendQueueBytes:       cfg.SendQueueBytes,
		SendBlocks:           cfg.SendBlocks,
		MaxMessageSize:       cfg.MaxMessageSize,
		EventBuffer:          cfg.EventBuffer,
		MaxPendingMessages:   cfg.MaxPendingMessages,
		OnMessage:            cfg.OnMessage,
	})
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return nil, err
	}
	s := &Service{cfg: cfg, ident: ident, tcp: tcp, node: node}
	for _, e := range errs {
		cfg.Log.Warn("listen address failed", "err", e)
		addr := ""
		var le *transport.ListenError
		if errors.As(e, &le) {
			addr = le.Addr
		}
		node.ReportListenerFailed(addr, e)
	}
	return s, nil
}

// ID returns this node's NodeID.
func (s *Service) ID() NodeID { return s.ident.ID() }

// Endpoints returns where this node listens.
func (s *Service) Endpoints() []Endpoint { return s.tcp.Endpoints() }

// Contact returns this node's contact (ID and endpoints), to hand to peers.
func (s *Service) Contact() Contact { return Contact{ID: s.ID(), Endpoints: s.Endpoints()} }

// Connect connects to the contact and returns once the peer is connected (at once if
// it already is), or the error of every attempt, or ctx's error. A PeerConnected event
// is delivered too. A peer that proves another NodeID than c.ID is refused with an
// error naming both.
func (s *Service) Connect(ctx context.Context, c Contact) error {
	return s.node.Connect(ctx, c.ID, c.Endpoints)
}

// Send queues data for the peer and returns without waiting. Messages to one peer
// arrive in the order sent, each once, while the connection lives; data is copied.
// A full queue returns ErrQueueFull (or waits, with Config.SendBlocks).
func (s *Service) Send(id NodeID, data []byte) error { return s.node.Send(id, data) }

// Disconnect closes the connection to the peer with a Goodbye; PeerLost follows.
func (s *Service) Disconnect(id NodeID) error { return s.node.Disconnect(id) }

// Peers lists the connected peers.
func (s *Service) Peers() []PeerInfo { return s.node.Peers() }

// Events delivers what happens, in order. Read it steadily: while it is not read,
// received messages wait (up to MaxPendingMessages) and then peers are read no more.
// It is closed by Close.
func (s *Service) Events() <-chan Event { return s.node.Events() }

// Close says Goodbye to every peer (waiting up to ShutdownGrace for answers), stops
// every goroutine and closes the Events channel. Safe to call more than once.
func (s *Service) Close() error {
	s.node.Close(s.cfg.ShutdownGrace)
	return nil
}
