package stun

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/nat/stun/stuntest"
	pion "github.com/pion/stun/v3"
	"golang.org/x/sys/unix"
)

// reusePort lets a listener and outgoing connections share one local port, as the
// TCP hole punch does.
func reusePort(_, _ string, c syscall.RawConn) error {
	var sockErr error
	err := c.Control(func(fd uintptr) {
		if sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); sockErr != nil {
			return
		}
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return sockErr
}

// plainDial dials from an ephemeral port.
func plainDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func TestTCPBindingFromListenPort(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{})

	lc := net.ListenConfig{Control: reusePort}
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	local := ln.Addr().(*net.TCPAddr).AddrPort()

	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: reusePort}
	r, err := BindingTCP(t.Context(), d.DialContext, srv.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Mapped != local {
		t.Errorf("Mapped = %v, want the listener's address %v", r.Mapped, local)
	}
	if r.Server != srv.TCPAddr().String() || r.Origin != srv.TCPAddr() || r.Other != srv.AltAddr() {
		t.Errorf("Result = %+v, want Server and Origin %v, Other %v", r, srv.TCPAddr(), srv.AltAddr())
	}
	if r.RTT <= 0 {
		t.Errorf("RTT = %v", r.RTT)
	}

	// The listener still works on that port.
	conn, err := plainDial(t.Context(), "tcp4", local.String())
	if err != nil {
		t.Fatalf("dialling the listener after the Binding: %v", err)
	}
	conn.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	accepted.Close()
}

func TestTCPErrors(t *testing.T) {
	tests := []struct {
		name  string
		mode  stuntest.Mode
		check func(error) bool
	}{
		{"error response", stuntest.Error401, func(err error) bool {
			var se *ServerError
			return errors.As(err, &se) && se.Code == 401
		}},
		{"garbage", stuntest.Garbage, func(err error) bool { return errors.Is(err, ErrNotSTUN) }},
		{"wrong transaction", stuntest.WrongTxID, func(err error) bool {
			return errors.Is(err, ErrNoResponse) && errors.Is(err, context.DeadlineExceeded)
		}},
		{"silent", stuntest.Silent, func(err error) bool {
			return errors.Is(err, ErrNoResponse) && errors.Is(err, context.DeadlineExceeded)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := stuntest.New(t, stuntest.Config{Mode: tt.mode})
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := BindingTCP(ctx, plainDial, srv.TCPAddr().String())
			if !tt.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestTCPCancelUnblocks(t *testing.T) {
	srv := stuntest.New(t, stuntest.Config{Mode: stuntest.Silent})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-srv.Requests() // the request is in: the client is now blocked reading
		cancel()
	}()
	_, err := BindingTCP(ctx, plainDial, srv.TCPAddr().String())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestTCPServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = readMessage(c, make([]byte, maxMessageSize))
		c.Close()
	}()
	_, err = BindingTCP(t.Context(), plainDial, ln.Addr().String())
	<-done
	if !errors.Is(err, ErrNoResponse) {
		t.Errorf("err = %v, want ErrNoResponse", err)
	}
}

func TestTCPDialError(t *testing.T) {
	boom := errors.New("connection refused")
	_, err := BindingTCP(t.Context(), func(context.Context, string, string) (net.Conn, error) { return nil, boom }, "127.0.0.1:3478")
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the dial error", err)
	}
}

func TestReadMessage(t *testing.T) {
	ok, err := pion.Build(pion.BindingSuccess, pion.NewTransactionIDSetter([12]byte{1}),
		&pion.XORMappedAddress{IP: []byte{192, 0, 2, 1}, Port: 32853})
	if err != nil {
		t.Fatal(err)
	}
	oversized := append([]byte(nil), ok.Raw[:20]...)
	binary.BigEndian.PutUint16(oversized[2:4], 4096)
	oddLength := append([]byte(nil), ok.Raw[:20]...)
	binary.BigEndian.PutUint16(oddLength[2:4], 5)

	tests := []struct {
		name    string
		stream  []byte
		want    []byte
		wantErr error
	}{
		{"one message then more bytes", append(append([]byte(nil), ok.Raw...), 0xFF, 0xFF), ok.Raw, nil},
		{"oversized", append(oversized, make([]byte, 4096)...), nil, ErrNotSTUN},
		{"length not a multiple of 4", append(oddLength, make([]byte, 8)...), nil, ErrNotSTUN},
		{"no magic cookie", make([]byte, 40), nil, ErrNotSTUN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readMessage(bytes.NewReader(tt.stream), make([]byte, maxMessageSize))
			if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
				t.Errorf("readMessage = %x, %v; want %x, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	_, err = readMessage(bytes.NewReader(ok.Raw[:30]), make([]byte, maxMessageSize))
	if err == nil {
		t.Error("truncated message read without error")
	}
}
