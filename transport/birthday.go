package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/crust-p2p/crust/transport/identity"
)

// BirthdayDial is our side of a birthday punch, for when our NAT is endpoint-dependent
// (symmetric) and the peer's is not. Our NAT gives each destination a new port, at
// random, so no port of ours can be told to the peer in advance. Instead we open
// sockets UDP sockets, each sending punch packets to raddr (the peer's mapped QUIC
// endpoint) every interval, so that our NAT holds that many mappings toward it, while
// the peer sends punch packets to random ports of our address (see the peer's spray
// in the actors). With 128 sockets and 4,096 probes over the 64,512 ports a NAT hands
// out, some probe meets one of our mappings with probability 1 − e^(−128·4096/64512)
// ≈ 0.9997 (the birthday paradox). The first socket such a probe reaches has a way
// through both NATs: QUIC is dialled from it to raddr, and the returned connection
// keeps that socket until it closes. The other sockets are closed at once.
func (q *QUIC) BirthdayDial(ctx context.Context, raddr netip.AddrPort, want identity.NodeID, sockets int, interval time.Duration) (Conn, error) {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	network, local := "udp4", "0.0.0.0:0"
	if raddr.Addr().Is6() {
		network, local = "udp6", "[::]:0"
	}
	var pcs []net.PacketConn
	defer func() {
		for _, pc := range pcs {
			if pc != nil {
				pc.Close()
			}
		}
	}()
	for range sockets {
		pc, err := q.cfg.Net.ListenPacket(ctx, network, local)
		if err != nil {
			if len(pcs) == 0 {
				return nil, fmt.Errorf("birthday punch to %s: %w", raddr, err)
			}
			q.cfg.Log.Debug("birthday punch: fewer sockets than planned", "open", len(pcs), "err", err)
			break
		}
		pcs = append(pcs, pc)
	}
	won := make(chan int, 1)
	var readers sync.WaitGroup
	for i, pc := range pcs {
		readers.Go(func() {
			buf := make([]byte, 128)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if id, ok := parsePunchPacket(buf[:n]); ok && id == want && AddrPortOf(from) == raddr {
					select {
					case won <- i:
					default:
					}
					return
				}
			}
		})
	}
	to := net.UDPAddrFromAddrPort(raddr)
	send := func() {
		for _, pc := range pcs {
			pc.WriteTo(q.punch, to)
		}
	}
	send()
	tick := time.NewTicker(interval)
	winner := -1
wait:
	for {
		select {
		case winner = <-won:
			break wait
		case <-tick.C:
			send()
		case <-ctx.Done():
			break wait
		}
	}
	tick.Stop()
	for _, pc := range pcs {
		pc.SetReadDeadline(time.Unix(1, 0))
	}
	readers.Wait()
	if winner < 0 {
		return nil, fmt.Errorf("birthday punch to %s from %d sockets: no probe of the peer reached one: %w", raddr, len(pcs), context.Cause(ctx))
	}
	pc := pcs[winner]
	pcs[winner] = nil
	pc.SetReadDeadline(time.Time{})
	q.cfg.Log.Debug("birthday punch: a probe got through", "to", raddr, "local", pc.LocalAddr(), "sockets", len(pcs))
	return q.dialOwn(ctx, pc, Endpoint{Proto: "quic", Addr: raddr}, want)
}

// dialOwn dials ep from pc, a socket that serves only this connection: pc and its
// quic.Transport close with the connection (or with q).
func (q *QUIC) dialOwn(ctx context.Context, pc net.PacketConn, ep Endpoint, want identity.NodeID) (Conn, error) {
	tr := &quic.Transport{Conn: pc}
	release := func() {
		q.mu.Lock()
		_, mine := q.own[tr]
		delete(q.own, tr)
		q.mu.Unlock()
		if mine {
			tr.Close()
			pc.Close()
		}
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		pc.Close()
		return nil, fmt.Errorf("dialling %s: %w", ep, net.ErrClosed)
	}
	if q.own == nil {
		q.own = make(map[*quic.Transport]net.PacketConn)
	}
	q.own[tr] = pc
	q.wg.Add(1)
	q.mu.Unlock()
	c, qc, err := q.dialOn(ctx, tr, ep, want)
	if err != nil {
		release()
		q.wg.Done()
		return nil, err
	}
	go func() {
		defer q.wg.Done()
		<-qc.Context().Done()
		release()
	}()
	return c, nil
}
