package stun_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/crust-p2p/crust/nat/stun"
)

// The socket's owner reads every datagram and gives STUN a look at those it does
// not recognise; Bindings then share the socket, and the mapping, with QUIC.
func ExampleUDP() {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	u := stun.NewUDP(func(b []byte, to netip.AddrPort) error {
		_, err := conn.WriteToUDPAddrPort(b, to)
		return err
	})
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if u.HandlePacket(buf[:n], from) {
				continue
			}
			// ... hand buf[:n] to QUIC or drop it
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	servers := []string{"stun1.example.net:3478", "stun2.example.net:3478"}
	outcomes, mapped, err := stun.Resolve(ctx, servers, func(ctx context.Context, server string) (stun.Result, error) {
		addr, err := stun.ResolveServer(ctx, server, "udp4")
		if err != nil {
			return stun.Result{}, err
		}
		return u.Binding(ctx, addr)
	})
	var results []stun.Result
	for _, o := range outcomes {
		results = append(results, o.Result)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	fmt.Println(mapped, err, stun.Classify(local, results...))
}

// BindingTCP dials from the TCP listener's own port, so that the mapping it
// reports is the one peers can connect to.
func ExampleBindingTCP() {
	var listenerPort uint16 = 4000 // the port our TCP listener has, bound with SO_REUSEADDR|SO_REUSEPORT
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{Port: int(listenerPort)},
		// Control: set SO_REUSEADDR and SO_REUSEPORT, as on the listener.
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := stun.BindingTCP(ctx, d.DialContext, "stun.example.net:3478")
	fmt.Println(r.Mapped, err)
}
