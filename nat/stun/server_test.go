package stun

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	pion "github.com/pion/stun/v3"
)

// serverMode says how the test server answers.
type serverMode int

const (
	answerOK        serverMode = iota // a Binding success response
	answerNothing                     // stay silent
	answerGarbage                     // non-STUN bytes, then malformed STUN with the right transaction
	answerError401                    // a Binding error response, 401 Unauthorized
	answerWrongTxID                   // a success response for another transaction
	answerOtherPort                   // a success response, sent from the other port
)

// serverConfig configures a testServer.
type serverConfig struct {
	mode serverMode
	// drop is how many requests to ignore before answering.
	drop int
	// mapped, if set, is reported instead of the request's source (a lying server).
	mapped netip.AddrPort
}

// testServer is a small STUN server on 127.0.0.1, UDP and TCP, built on pion's
// message API. It reports the source address it saw as XOR-MAPPED-ADDRESS, its
// second UDP socket as OTHER-ADDRESS, and the answering socket as RESPONSE-ORIGIN.
type testServer struct {
	t   *testing.T
	cfg serverConfig
	udp *net.UDPConn
	alt *net.UDPConn // the other port: OTHER-ADDRESS, and the sender for answerOtherPort
	tcp *net.TCPListener
	// requests gets one value per Binding request received (dropped ones too), so
	// tests can wait for the server to have seen a request without sleeping.
	requests chan netip.AddrPort

	mu      sync.Mutex
	dropped int
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newTestServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	s := &testServer{
		t:        t,
		cfg:      cfg,
		requests: make(chan netip.AddrPort, 256),
		conns:    make(map[net.Conn]struct{}),
	}
	var err error
	loopback := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))
	if s.udp, err = net.ListenUDP("udp4", loopback); err != nil {
		t.Fatal(err)
	}
	if s.alt, err = net.ListenUDP("udp4", loopback); err != nil {
		t.Fatal(err)
	}
	if s.tcp, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
	t.Cleanup(func() {
		s.udp.Close()
		s.alt.Close()
		s.tcp.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// UDPAddr is the server's main UDP address.
func (s *testServer) UDPAddr() netip.AddrPort { return s.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// AltAddr is the server's other UDP address, reported as OTHER-ADDRESS.
func (s *testServer) AltAddr() netip.AddrPort { return s.alt.LocalAddr().(*net.UDPAddr).AddrPort() }

// TCPAddr is the server's TCP address.
func (s *testServer) TCPAddr() netip.AddrPort { return s.tcp.Addr().(*net.TCPAddr).AddrPort() }

func (s *testServer) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed by Cleanup
		}
		answers := s.answer(buf[:n], from, s.UDPAddr())
		conn := s.udp
		if s.cfg.mode == answerOtherPort {
			conn = s.alt
		}
		for _, a := range answers {
			_, _ = conn.WriteToUDPAddrPort(a, from)
		}
	}
}

func (s *testServer) serveTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return // closed by Cleanup
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			for {
				req, err := readTestMessage(c)
				if err != nil {
					return
				}
				for _, a := range s.answer(req, from, s.TCPAddr()) {
					if _, err := c.Write(a); err != nil {
						return
					}
				}
			}
		})
	}
}

// readTestMessage reads one STUN message from a stream, independently of the
// package's own framing code.
func readTestMessage(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(hdr, body...), nil
}

// answer returns the datagrams (or stream writes) that answer request b from from.
func (s *testServer) answer(b []byte, from, origin netip.AddrPort) [][]byte {
	req := new(pion.Message)
	if err := pion.Decode(b, req); err != nil || req.Type != pion.BindingRequest {
		return nil
	}
	select {
	case s.requests <- from:
	default:
	}
	s.mu.Lock()
	drop := s.dropped < s.cfg.drop
	if drop {
		s.dropped++
	}
	s.mu.Unlock()
	if drop {
		return nil
	}

	mapped := from
	if s.cfg.mapped.IsValid() {
		mapped = s.cfg.mapped
	}
	id := req.TransactionID
	switch s.cfg.mode {
	case answerNothing:
		return nil
	case answerGarbage:
		return garbageFor(id)
	case answerError401:
		return [][]byte{s.build(pion.BindingError, id,
			pion.ErrorCodeAttribute{Code: pion.CodeUnauthorized, Reason: []byte("Unauthorized")})}
	case answerWrongTxID:
		id[0] ^= 0xFF
	}
	return [][]byte{s.build(pion.BindingSuccess, id,
		&pion.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())},
		&pion.OtherAddress{IP: s.AltAddr().Addr().AsSlice(), Port: int(s.AltAddr().Port())},
		&pion.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
		pion.NewSoftware("crust test server"),
		pion.Fingerprint,
	)}
}

func (s *testServer) build(t pion.MessageType, id [12]byte, setters ...pion.Setter) []byte {
	m, err := pion.Build(append([]pion.Setter{t, pion.NewTransactionIDSetter(id)}, setters...)...)
	if err != nil {
		s.t.Errorf("test server: building response: %v", err)
		return nil
	}
	return m.Raw
}

// garbageFor returns bad answers to transaction id: bytes that are not STUN at all,
// and messages with id that are malformed or too big.
func garbageFor(id [12]byte) [][]byte {
	header := func(length int) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:2], pion.BindingSuccess.Value())
		binary.BigEndian.PutUint16(h[2:4], uint16(length))
		binary.BigEndian.PutUint32(h[4:8], magicCookie)
		copy(h[8:], id[:])
		return h
	}
	notSTUN := []byte("this is not a STUN message, just noise")
	// An attribute claiming 100 bytes in a 8-byte body.
	overrun := append(header(8), 0x00, 0x20, 0x00, 100, 1, 2, 3, 4)
	// A length field that disagrees with the datagram.
	badLength := append(header(40), make([]byte, 8)...)
	// A well-formed header, but 4 KiB: bigger than any Binding response.
	oversized := append(header(4096), bytes.Repeat([]byte{0}, 4096)...)
	return [][]byte{notSTUN, overrun, badLength, oversized}
}
