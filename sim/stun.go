package sim

import (
	"net"
	"net/netip"

	pion "github.com/pion/stun/v3"

	"github.com/crust-p2p/crust/sim/vnet"
)

// STUNPort is where the simulation's STUN servers listen.
const STUNPort = 3478

// STUNServer answers STUN Binding requests (RFC 5389) on a virtual host's UDP port
// with the address it saw them from, its own address (RESPONSE-ORIGIN) and another
// server's (OTHER-ADDRESS, RFC 5780), which is how crust tells NAT behaviours apart.
type STUNServer struct {
	conn  *vnet.PacketConn
	other netip.AddrPort
}

// StartSTUN starts a STUN server on host's STUNPort naming other as the alternate
// server; Close stops it.
func StartSTUN(host *vnet.Host, other netip.AddrPort) (*STUNServer, error) {
	conn, err := host.ListenPacket(STUNPort)
	if err != nil {
		return nil, err
	}
	s := &STUNServer{conn: conn, other: other}
	go s.serve()
	return s, nil
}

// Addr is the server's address.
func (s *STUNServer) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close stops the server.
func (s *STUNServer) Close() error { return s.conn.Close() }

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
