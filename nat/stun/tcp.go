package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	pion "github.com/pion/stun/v3"
)

const (
	// tcpTimeout is Ti, how long a Binding over TCP may take (RFC 5389 §7.2.2).
	tcpTimeout = 39500 * time.Millisecond
	// maxTCPMessages bounds the unrelated messages we skip while waiting for ours.
	maxTCPMessages = 8
)

// BindingTCP does one Binding over a stream from dial(ctx, "tcp", server) and closes
// it (with a reset, so the local port is free to ask the same server again at once). To learn the mapping peers can reach, dial should bind the local port of the
// caller's TCP listener (SO_REUSEADDR + SO_REUSEPORT). Messages are framed by their
// own header (RFC 5389 §7.2.2); one larger than 2 KiB ends the Binding with an error
// wrapping [ErrNotSTUN]. The Binding is bounded by ctx and by 39.5 s (Ti).
//
// Errors name the server; besides dial and I/O errors they wrap [ErrNoResponse],
// [ErrNotSTUN], a [*ServerError] or [ErrNoAddress].
func BindingTCP(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), server string) (Result, error) {
	start := time.Now()
	conn, err := dial(ctx, "tcp", server)
	if err != nil {
		return Result{}, fmt.Errorf("stun %s over TCP: dialling: %w", server, err)
	}
	// Closed with a reset, not a FIN: a graceful close from a shared listen port
	// leaves that port's connection to the server in TIME_WAIT for a minute, and the
	// next Binding to the same server from the same port fails to bind ("cannot
	// assign requested address").
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	defer conn.Close()

	if err := conn.SetDeadline(start.Add(tcpTimeout)); err != nil {
		return Result{}, fmt.Errorf("stun %s over TCP: %w", server, err)
	}
	// ctx's end unblocks I/O by moving the deadline to the past. Doing it here
	// rather than with ctx's deadline means ctx is already done when I/O fails,
	// so the error can say why.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(doing string, err error) (Result, error) {
		if cause := context.Cause(ctx); cause != nil {
			return Result{}, fmt.Errorf("stun %s over TCP: %w (%s): %w", server, ErrNoResponse, roundDuration(time.Since(start)), cause)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Result{}, fmt.Errorf("stun %s over TCP: %w (%s)", server, ErrNoResponse, roundDuration(time.Since(start)))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
			return Result{}, fmt.Errorf("stun %s over TCP: %w: server closed the connection", server, ErrNoResponse)
		}
		return Result{}, fmt.Errorf("stun %s over TCP: %s: %w", server, doing, err)
	}

	id := pion.NewTransactionID()
	req, err := newRequest(id)
	if err != nil {
		return Result{}, err
	}
	sent := time.Now()
	if _, err := conn.Write(req); err != nil {
		return fail("sending Binding request", err)
	}
	buf := make([]byte, maxMessageSize)
	for range maxTCPMessages {
		msg, err := readMessage(conn, buf)
		if errors.Is(err, ErrNotSTUN) {
			return Result{}, fmt.Errorf("stun %s over TCP: %w", server, err)
		}
		if err != nil {
			return fail("reading response", err)
		}
		r, err := ParseResponse(msg, id)
		if errors.Is(err, ErrWrongTransaction) || errors.Is(err, ErrNotResponse) {
			continue // not ours: RFC 5389 §7.3.3 says ignore it
		}
		if err != nil {
			return Result{}, fmt.Errorf("stun %s over TCP: %w", server, err)
		}
		r.Server = server
		r.RTT = time.Since(sent)
		return r, nil
	}
	return Result{}, fmt.Errorf("stun %s over TCP: %w: %d messages that were not our answer", server, ErrNoResponse, maxTCPMessages)
}

// readMessage reads exactly one STUN message from a stream into buf, which bounds
// its size, and returns it. A stream that does not carry STUN (bad magic cookie,
// impossible length) gives an error wrapping ErrNotSTUN: its framing is lost.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:headerSize]); err != nil {
		return nil, err
	}
	if !looksLikeSTUN(buf[:headerSize]) {
		return nil, fmt.Errorf("%w: no magic cookie", ErrNotSTUN)
	}
	n := int(binary.BigEndian.Uint16(buf[2:4]))
	if n%4 != 0 {
		return nil, fmt.Errorf("%w: length %d is not a multiple of 4", ErrNotSTUN, n)
	}
	if headerSize+n > len(buf) {
		return nil, fmt.Errorf("%w: %d-byte message, more than %d", ErrNotSTUN, headerSize+n, len(buf))
	}
	if _, err := io.ReadFull(r, buf[headerSize:headerSize+n]); err != nil {
		return nil, err
	}
	return buf[:headerSize+n], nil
}
