package stuntest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
)

// Mode says how a [Server] answers Binding requests.
type Mode int

const (
	// OK answers with a Binding success response.
	OK Mode = iota
	// Silent never answers.
	Silent
	// Garbage answers with bytes that are not STUN, then with malformed or
	// oversized STUN messages that carry the request's transaction ID: see
	// [GarbageFor].
	Garbage
	// Error401 answers with a Binding error response, 401 Unauthorized.
	Error401
	// WrongTxID answers with a success response for another transaction.
	WrongTxID
	// OtherPort answers over UDP with a success response sent from the other UDP
	// socket: the main address's answers come from the alternate and the other way
	// round. Over TCP it answers as OK.
	OtherPort
)

// Config configures a [Server]. The zero value is an honest server on 127.0.0.1.
type Config struct {
	// Mode says how the server answers. Default OK.
	Mode Mode
	// Drop is how many Binding requests the server ignores before it answers,
	// counted over all its sockets. Default 0.
	Drop int
	// Mapped, if valid, is reported as XORed mapped address instead of the source
	// address the server saw (a lying server), by the main and the alternate
	// address. Default: the source address.
	Mapped netip.AddrPort
	// AltMapped, if valid, is reported by the alternate address instead of Mapped
	// or the source address: with Mapped set as well, the main address says one
	// thing and the alternate another, as behind an endpoint-dependent NAT.
	// Default: as the main address.
	AltMapped netip.AddrPort
	// Addr is the IPv4 address the server listens on. Any address in 127.0.0.0/8
	// works on Linux without setup, so several servers can have different IPs.
	// Default "127.0.0.1".
	Addr string
}

// Server is a STUN server on loopback. It listens on two UDP sockets, the main
// address and the alternate one, and on TCP at a port of its own and, where that
// port number is free for TCP, at the alternate address's port number.
//
// Every success response carries XOR-MAPPED-ADDRESS (the source address seen, or
// [Config.Mapped] or [Config.AltMapped]), OTHER-ADDRESS (the main address's
// answers name the alternate, the alternate's name the main address of the same
// protocol) and RESPONSE-ORIGIN (the address that answers).
type Server struct {
	t      testing.TB
	cfg    Config
	udp    *net.UDPConn
	alt    *net.UDPConn
	tcp    *net.TCPListener
	altTCP *net.TCPListener // nil if the alternate's port number was taken for TCP
	// requests gets the source address of every Binding request.
	requests chan netip.AddrPort

	mu      sync.Mutex
	dropped int
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// altTCPTries is how many alternate UDP ports New tries to find one free for TCP too.
const altTCPTries = 10

// New starts a server for the length of the test: t.Cleanup closes its sockets and
// waits for its goroutines. It fails the test if it cannot listen.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(cfg.Addr)
	if err != nil || !ip.Is4() {
		t.Fatalf("stuntest: Addr %q is not an IPv4 address", cfg.Addr)
	}
	s := &Server{
		t:        t,
		cfg:      cfg,
		requests: make(chan netip.AddrPort, 256),
		conns:    make(map[net.Conn]struct{}),
	}
	t.Cleanup(s.close)

	local := netip.AddrPortFrom(ip, 0)
	if s.udp, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local)); err != nil {
		t.Fatalf("stuntest: %v", err)
	}
	if s.tcp, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(local)); err != nil {
		t.Fatalf("stuntest: %v", err)
	}
	// The alternate listens on TCP at its UDP port number, as a real server would.
	// That number may be taken for TCP by someone else: try a few UDP ports, then
	// make do without TCP at the alternate.
	for i := 0; i < altTCPTries && s.altTCP == nil; i++ {
		if s.alt != nil {
			s.alt.Close()
		}
		if s.alt, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(local)); err != nil {
			t.Fatalf("stuntest: %v", err)
		}
		s.altTCP, _ = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(s.AltAddr()))
	}

	altMapped := cfg.Mapped
	if cfg.AltMapped.IsValid() {
		altMapped = cfg.AltMapped
	}
	s.wg.Go(func() {
		s.serveUDP(s.udp, s.alt, side{origin: s.UDPAddr(), other: s.AltAddr(), mapped: cfg.Mapped})
	})
	s.wg.Go(func() {
		s.serveUDP(s.alt, s.udp, side{origin: s.AltAddr(), other: s.UDPAddr(), mapped: altMapped})
	})
	s.wg.Go(func() {
		s.serveTCP(s.tcp, side{origin: s.TCPAddr(), other: s.AltAddr(), mapped: cfg.Mapped})
	})
	if s.altTCP != nil {
		s.wg.Go(func() {
			s.serveTCP(s.altTCP, side{origin: s.AltTCPAddr(), other: s.TCPAddr(), mapped: altMapped})
		})
	}
	return s
}

// UDPAddr is the server's main UDP address.
func (s *Server) UDPAddr() netip.AddrPort { return s.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// AltAddr is the server's alternate UDP address, reported as OTHER-ADDRESS. It
// answers Binding requests too, with itself as RESPONSE-ORIGIN.
func (s *Server) AltAddr() netip.AddrPort { return s.alt.LocalAddr().(*net.UDPAddr).AddrPort() }

// TCPAddr is the server's main TCP address.
func (s *Server) TCPAddr() netip.AddrPort { return s.tcp.Addr().(*net.TCPAddr).AddrPort() }

// AltTCPAddr is the alternate's TCP address: AltAddr, since it listens at the same
// port number. It is the zero AddrPort if that port number was taken for TCP
// (rarely: New tries several), in which case only the main address serves TCP.
func (s *Server) AltTCPAddr() netip.AddrPort {
	if s.altTCP == nil {
		return netip.AddrPort{}
	}
	return s.altTCP.Addr().(*net.TCPAddr).AddrPort()
}

// Requests gets the source address of every Binding request the server sees, at
// any of its addresses, dropped ones included, so that tests can wait for a request
// to arrive without sleeping. It holds 256; requests beyond are not reported.
func (s *Server) Requests() <-chan netip.AddrPort { return s.requests }

// side is what one listening socket reports in its answers.
type side struct {
	origin netip.AddrPort // RESPONSE-ORIGIN
	other  netip.AddrPort // OTHER-ADDRESS
	mapped netip.AddrPort // if valid, reported instead of the source address
}

// serveUDP answers the requests conn receives, from conn or, in OtherPort mode,
// from other.
func (s *Server) serveUDP(conn, other *net.UDPConn, sd side) {
	reply := conn
	if s.cfg.Mode == OtherPort {
		reply = other
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed by close
		}
		for _, a := range s.answer(buf[:n], from, sd) {
			_, _ = reply.WriteToUDPAddrPort(a, from)
		}
	}
}

func (s *Server) serveTCP(ln *net.TCPListener, sd side) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by close
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			for {
				req, err := readMessage(c)
				if err != nil {
					return
				}
				for _, a := range s.answer(req, from, sd) {
					if _, err := c.Write(a); err != nil {
						return
					}
				}
			}
		})
	}
}

// track registers an accepted connection so that close can end its reads; it
// reports false if the server is already closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// close closes every socket, which ends every goroutine, and waits for them. It
// copes with a New that failed halfway.
func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, c := range []*net.UDPConn{s.udp, s.alt} {
		if c != nil {
			c.Close()
		}
	}
	for _, l := range []*net.TCPListener{s.tcp, s.altTCP} {
		if l != nil {
			l.Close()
		}
	}
	s.wg.Wait()
}
