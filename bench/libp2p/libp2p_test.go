package libp2pbench

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// Protocol IDs of the benchmark streams.
const (
	throughputProtocol protocol.ID = "/crust-bench/throughput/1.0.0"
	setupProtocol      protocol.ID = "/crust-bench/setup/1.0.0"
)

// streamBufferSize is the bufio buffer on each side of a throughput stream, the
// size crust's own frame writer and reader use.
const streamBufferSize = 64 << 10

// newHost starts a libp2p host on 127.0.0.1 with one transport, "tcp" (TLS 1.3 and
// yamux) or "quic", built with explicit options: nothing but that transport, the
// security and muxer it needs, identify (always on) and no background services.
// b.Cleanup closes it.
func newHost(b *testing.B, transport string) host.Host {
	opts := []libp2p.Option{
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		// Neither resource limits nor connection trimming may skew the figures.
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(connmgr.NullConnMgr{}),
		// A static reachability keeps the AutoNAT client from probing.
		libp2p.ForceReachabilityPrivate(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		// Black-hole detection only counts dial failures; there are none here.
		libp2p.UDPBlackHoleSuccessCounter(nil),
		libp2p.IPv6BlackHoleSuccessCounter(nil),
	}
	switch transport {
	case "tcp":
		opts = append(opts,
			libp2p.Transport(tcp.NewTCPTransport),
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	case "quic":
		opts = append(opts,
			libp2p.Transport(libp2pquic.NewTransport),
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	default:
		b.Fatalf("libp2p: unknown transport %q", transport)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		b.Fatalf("starting a libp2p host (%s): %v", transport, err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

// addrInfo is what a peer needs to dial h.
func addrInfo(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// benchLibp2pThroughput sends b.N messages of size bytes over one stream between
// two hosts, framed as a 4-byte big-endian length and the payload; the receiver
// counts whole messages.
func benchLibp2pThroughput(b *testing.B, transport string, size int) {
	tx, rx := newHost(b, transport), newHost(b, transport)
	counted := make(chan int, 1)
	rx.SetStreamHandler(throughputProtocol, func(s network.Stream) {
		defer s.Close()
		counted <- countMessages(s, b.N, size)
	})
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := tx.Connect(ctx, addrInfo(rx)); err != nil {
		b.Fatalf("libp2p connect: %v", err)
	}
	s, err := tx.NewStream(ctx, rx.ID(), throughputProtocol)
	if err != nil {
		b.Fatalf("libp2p new stream: %v", err)
	}
	defer s.Close()
	w := bufio.NewWriterSize(s, streamBufferSize)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := writeMessage(w, msg); err != nil {
			b.Fatalf("libp2p write: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatalf("libp2p flush: %v", err)
	}
	waitDelivered(b, counted)
}

// writeMessage writes one length-prefixed message to w.
func writeMessage(w *bufio.Writer, msg []byte) error {
	var length [4]byte
	binary.BigEndian.PutUint32(length[:], uint32(len(msg)))
	if _, err := w.Write(length[:]); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// countMessages reads up to n length-prefixed messages of at most maxSize bytes from
// r and returns how many whole messages it read.
func countMessages(r io.Reader, n, maxSize int) int {
	br := bufio.NewReaderSize(r, streamBufferSize)
	buf := make([]byte, maxSize)
	var length [4]byte
	got := 0
	for got < n {
		if _, err := io.ReadFull(br, length[:]); err != nil {
			break
		}
		size := binary.BigEndian.Uint32(length[:])
		if size > uint32(maxSize) {
			break
		}
		if _, err := io.ReadFull(br, buf[:size]); err != nil {
			break
		}
		got++
	}
	return got
}

// benchLibp2pSetup times host.Connect (which dials, secures, muxes and waits for
// identify) plus NewStream on the new connection. Identify has told the dialer the
// listener's protocols, so NewStream negotiates lazily: no round trip, no byte sent
// before it returns. Between iterations the connection is closed and gone on both
// sides, untimed, so every Connect dials and handshakes afresh.
func benchLibp2pSetup(b *testing.B, transport string) {
	dialer, listener := newHost(b, transport), newHost(b, transport)
	listener.SetStreamHandler(setupProtocol, func(s network.Stream) { s.Close() })
	info := addrInfo(listener)
	b.ResetTimer()
	for range b.N {
		s := openStream(b, dialer, info)
		b.StopTimer()
		s.Reset()
		if err := dialer.Network().ClosePeer(info.ID); err != nil {
			b.Fatalf("libp2p close peer: %v", err)
		}
		waitUntil(b, "libp2p connections to close", func() bool {
			return len(dialer.Network().ConnsToPeer(info.ID)) == 0 &&
				len(listener.Network().ConnsToPeer(dialer.ID())) == 0
		})
		b.StartTimer()
	}
}

// openStream connects h to the peer and opens a setup stream to it.
func openStream(b *testing.B, h host.Host, to peer.AddrInfo) network.Stream {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := h.Connect(ctx, to); err != nil {
		b.Fatalf("libp2p connect: %v", err)
	}
	s, err := h.NewStream(ctx, to.ID, setupProtocol)
	if err != nil {
		b.Fatalf("libp2p new stream: %v", err)
	}
	return s
}
