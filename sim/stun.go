package sim

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"

	pion "github.com/pion/stun/v3"

	"github.com/crust-p2p/crust/sim/vnet"
)

// STUNPort is where the simulation's STUN servers listen.
const STUNPort = 3478

// STUNServer answers STUN Binding requests (RFC 5389) on a virtual host's UDP and TCP port
// with the address it saw them from, its own address (RESPONSE-ORIGIN) and another
// server's (OTHER-ADDRESS, RFC 5780), which is how crust tells NAT behaviours apart.
type STUNServer struct {
	conn  *vnet.PacketConn
	ln    *vnet.Listener
	other netip.AddrPort
}

// StartSTUN starts a STUN server on host's STUNPort naming other as the alternate
// server; Close stops it.
func StartSTUN(host *vnet.Host, other netip.AddrPort) (*STUNServer, error) {
	conn, err := host.ListenPacket(STUNPort)
	if err != nil {
		return nil, err
	}
	ln, err := host.Listen(STUNPort)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := &STUNServer{conn: conn, ln: ln, other: other}
	go s.serve()
	go s.serveTCP()
	return s, nil
}

// Addr is the server's address.
func (s *STUNServer) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close stops the server.
func (s *STUNServer) Close() error {
	s.ln.Close()
	return s.conn.Close()
}

func (s *STUNServer) serve() {
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply := s.answer(buf[:n], from.(*net.UDPAddr).AddrPort()); reply != nil {
			s.conn.WriteTo(reply, from)
		}
	}
}

// serveTCP answers Binding requests on each accepted stream (RFC 5389 framing: the
// 20-byte header gives the length of the rest).
func (s *STUNServer) serveTCP() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			for {
				hdr := make([]byte, 20)
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				msg := make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:4])))
				copy(msg, hdr)
				if _, err := io.ReadFull(c, msg[20:]); err != nil {
					return
				}
				reply := s.answer(msg, from)
				if reply == nil {
					return
				}
				if _, err := c.Write(reply); err != nil {
					return
				}
			}
		}()
	}
}

// answer returns the response to a Binding request b from from; nil for anything
// else.
func (s *STUNServer) answer(b []byte, from netip.AddrPort) []byte {
	req := new(pion.Message)
	if err := pion.Decode(b, req); err != nil || req.Type != pion.BindingRequest {
		return nil
	}
	origin := s.Addr()
	m, err := pion.Build(pion.BindingSuccess, pion.NewTransactionIDSetter(req.TransactionID),
		&pion.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		&pion.OtherAddress{IP: s.other.Addr().AsSlice(), Port: int(s.other.Port())},
		&pion.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
		pion.Fingerprint,
	)
	if err != nil {
		return nil
	}
	return m.Raw
}
