package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crust-p2p/crust"
)

// ops lists the requests, for error messages.
const ops = "self, peers, connect, disconnect, send, bootstrap, stats, block, unblock, blocked, events"

// Limits of the Server.
const (
	// maxRequestSize bounds one request line, without its newline.
	maxRequestSize = 1 << 20
	// maxConns bounds the connections served at once.
	maxConns = 32
	// eventBuffer bounds the events queued for one subscriber...
	eventBuffer = 1024
	// ...and eventBufferBytes their size, so that large messages cannot pile up.
	eventBufferBytes = 64 << 20
	// defaultConnectTimeout bounds a connect request without timeout_ms.
	defaultConnectTimeout = 30 * time.Second
	// writeTimeout bounds writing one answer or event to a client that does not read.
	writeTimeout = 10 * time.Second
	// lingerTimeout bounds reading what a client still sends after its connection is
	// ended for an oversized request, so that the error reaches it, not a TCP reset.
	lingerTimeout = time.Second
)

// Server serves the admin API of one crust.Service. Its methods are safe for
// concurrent use.
type Server struct {
	svc *crust.Service
	log *slog.Logger
	// ctx is cancelled by Close: it ends pending connect requests.
	ctx    context.Context
	cancel context.CancelFunc
	// refusals keeps refused requests from flooding the log.
	refusals logLimiter
	// blocks records block and unblock; nil without WithBlockStore.
	blocks BlockStore
	// blockMu makes each block or unblock, on the node and in blocks, one step.
	blockMu sync.Mutex

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]*connState
	subs      map[*subscriber]struct{}
	wg        sync.WaitGroup // one per connection goroutine
}

// connState is what Close needs to know of a connection.
type connState struct {
	// busy: a request is being handled. Close lets it write its answer (connect
	// answers that the server is shutting down) instead of closing under it.
	busy bool
}

// subscriber is a connection in "events" mode. Publish queues lines on it; when the
// queue is full Publish closes lines with overflowed set.
type subscriber struct {
	remote     string
	lines      chan []byte
	queued     atomic.Int64 // bytes in lines
	overflowed bool         // set under Server.mu before lines is closed
}

// NewServer returns a Server for svc, logging to log (slog.Default() if nil). Call
// Serve for each listener, Publish for each event of svc.Events(), and Close at the
// end.
func NewServer(svc *crust.Service, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		svc:       svc,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]*connState),
		subs:      make(map[*subscriber]struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Serve accepts admin connections on ln until Close, then returns nil; it closes ln.
// It returns an error if ln fails otherwise. Serve may run on several listeners at
// once (a unix socket and loopback TCP); the connection limit is shared.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("admin API on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logLimited(slog.LevelWarn, "admin API: accept failed; retrying", "addr", ln.Addr(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		s.admit(c)
	}
}

// admit starts serving c, or refuses it when maxConns are served.
func (s *Server) admit(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if len(s.conns) >= maxConns {
		s.mu.Unlock()
		s.logLimited(slog.LevelWarn, "admin API: connection refused: too many connections", "remote", remote(c), "max", maxConns)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeAnswer(c, answer{Error: fmt.Sprintf("too many admin connections (%d); close one and retry", maxConns)})
		c.Close()
		return
	}
	s.conns[c] = &connState{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveConn(c)
}

// Close stops every Serve, closes every admin connection and waits for their
// goroutines. Requests in progress are answered first; pending connects are cancelled
// and answer that the server is shutting down. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	for c, st := range s.conns {
		if st.busy {
			c.SetWriteDeadline(time.Now().Add(lingerTimeout)) // a client that does not read
		} else {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Publish sends ev to every "events" subscriber, without waiting: a subscriber whose
// queue is full is cut off. The daemon calls it for every event of svc.Events().
func (s *Server) Publish(ev crust.Event) {
	s.mu.Lock()
	n := len(s.subs)
	s.mu.Unlock()
	if n == 0 {
		return
	}
	e, ok := eventFrom(ev)
	if !ok {
		s.log.Debug("admin API: event type not published", "type", fmt.Sprintf("%T", ev))
		return
	}
	line, err := json.Marshal(e)
	if err != nil {
		s.log.Error("admin API: encoding an event", "type", e.Type, "err", err)
		return
	}
	line = append(line, '\n')
	var cut []*subscriber
	s.mu.Lock()
	for sub := range s.subs {
		full := len(sub.lines) == cap(sub.lines) ||
			(len(sub.lines) > 0 && sub.queued.Load()+int64(len(line)) > eventBufferBytes)
		if full {
			delete(s.subs, sub)
			sub.overflowed = true
			close(sub.lines)
			cut = append(cut, sub)
			continue
		}
		sub.queued.Add(int64(len(line)))
		sub.lines <- line // cannot block: only Publish sends, under s.mu
	}
	s.mu.Unlock()
	for _, sub := range cut {
		s.logLimited(slog.LevelWarn, "admin API: events subscriber fell behind; cut off", "remote", sub.remote, "max_events", eventBuffer, "max_bytes", eventBufferBytes)
	}
}

// serveConn answers the requests on c, in order, until c closes.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	for {
		line, err := readLine(r, maxRequestSize)
		if errors.Is(err, errLineTooLong) {
			s.logLimited(slog.LevelWarn, "admin API: request line too long; closing the connection", "remote", remote(c), "max", maxRequestSize)
			c.SetWriteDeadline(time.Now().Add(writeTimeout))
			writeAnswer(w, answer{Error: fmt.Sprintf("request line longer than %d bytes; closing the connection", maxRequestSize)})
			w.Flush()
			linger(c)
			return
		}
		if err != nil {
			return // the client closed, or Close did
		}
		if len(line) == 0 {
			continue
		}
		if !s.setBusy(c, true) {
			return // Close came first
		}
		var sub *subscriber
		ans := s.handle(c, line, &sub)
		s.setWriteDeadline(c)
		writeAnswer(w, ans)
		closing := !s.setBusy(c, false)
		if r.Buffered() == 0 || sub != nil || closing {
			if err := w.Flush(); err != nil || closing {
				s.unsubscribe(sub)
				return
			}
		}
		if sub != nil {
			s.stream(c, r, sub)
			return
		}
	}
}

// setBusy marks c busy or idle; false after Close, when c must end.
func (s *Server) setBusy(c net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c].busy = busy
	return true
}

// setWriteDeadline gives c writeTimeout for a write, or lingerTimeout after Close.
func (s *Server) setWriteDeadline(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	timeout := writeTimeout
	if s.closed {
		timeout = lingerTimeout
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
}

// handle answers one request line. For "events" it sets *sub to a new subscription,
// made before the answer is written so that no event between the two is missed.
func (s *Server) handle(c net.Conn, line []byte, sub **subscriber) (ans answer) {
	var req request
	defer func() {
		if p := recover(); p != nil {
			s.logLimited(slog.LevelError, "admin API: request handler panicked", "op", req.Op, "panic", p, "stack", string(debug.Stack()))
			ans = answer{Error: fmt.Sprintf("internal error handling %q (logged by the daemon): %v", req.Op, p)}
		}
	}()
	if err := json.Unmarshal(line, &req); err != nil {
		s.logLimited(slog.LevelDebug, "admin API: malformed request", "remote", remote(c), "err", err)
		return answer{Error: fmt.Sprintf("malformed request: %v; want one JSON object per line, e.g. {\"op\":\"self\"}", err)}
	}
	var (
		result any
		err    error
	)
	switch req.Op {
	case "self":
		result = s.self()
	case "peers":
		result = s.peers()
	case "connect":
		result, err = s.connect(req)
	case "disconnect":
		err = s.disconnect(req)
	case "send":
		err = s.send(req)
	case "bootstrap":
		result = s.bootstrap()
	case "stats":
		result = s.stats()
	case "block":
		result, err = s.block(req)
	case "unblock":
		result, err = s.unblock(req)
	case "blocked":
		result = s.blocked()
	case "events":
		*sub = s.subscribe(remote(c))
		if *sub == nil {
			err = errors.New("the admin server is shutting down")
		}
	case "":
		err = errors.New(`missing "op": want one of ` + ops)
	default:
		err = fmt.Errorf("unknown op %q: want one of %s", req.Op, ops)
	}
	if err != nil {
		s.logLimited(slog.LevelDebug, "admin API: request failed", "remote", remote(c), "op", req.Op, "err", err)
		return answer{Error: err.Error()}
	}
	return answer{OK: true, Result: result}
}

func (s *Server) self() Self {
	c := s.svc.Contact()
	info := s.svc.NAT()
	n := NAT{
		Behavior:  info.Behavior,
		Reflected: endpointStrings(c.Reflected),
		STUN:      endpointStrings(info.STUN),
		UPnP:      endpointStrings(info.UPnP),
		Errors:    info.Errors,
	}
	if info.ExternalIP.IsValid() {
		n.ExternalIP = info.ExternalIP.String()
	}
	if !info.Checked.IsZero() {
		n.Checked = &info.Checked
	}
	if n.Errors == nil {
		n.Errors = []string{}
	}
	return Self{
		ID:        c.ID.String(),
		Contact:   c.String(),
		Endpoints: endpointStrings(c.Endpoints),
		Reflected: endpointStrings(c.Reflected),
		NAT:       n,
	}
}

func (s *Server) peers() []Peer {
	infos := s.svc.Peers()
	out := make([]Peer, 0, len(infos))
	for _, p := range infos {
		out = append(out, peerFrom(p))
	}
	return out
}

func (s *Server) bootstrap() []BootstrapEntry {
	entries := s.svc.BootstrapEntries()
	out := make([]BootstrapEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, bootstrapEntryFrom(e))
	}
	return out
}

func (s *Server) connect(req request) (ConnectResult, error) {
	if req.Contact == "" {
		return ConnectResult{}, errors.New(`connect needs "contact": the peer's contact text, "id@tcp://host:port,..."`)
	}
	contact, err := crust.ParseContact(req.Contact)
	if err != nil {
		return ConnectResult{}, fmt.Errorf("parsing the contact: %w", err)
	}
	timeout := defaultConnectTimeout
	switch {
	case req.TimeoutMS < 0:
		return ConnectResult{}, fmt.Errorf(`"timeout_ms" is %d; want a positive number of milliseconds, or none for %v`, req.TimeoutMS, defaultConnectTimeout)
	case req.TimeoutMS > 0:
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	if err := s.svc.Connect(ctx, contact); err != nil {
		var ladder *crust.LadderError
		switch {
		case s.ctx.Err() != nil:
			return ConnectResult{}, errors.New("the admin server is shutting down")
		case errors.As(err, &ladder):
			return ConnectResult{}, err // it lists every step
		case errors.Is(err, context.DeadlineExceeded):
			return ConnectResult{}, fmt.Errorf("connecting to %s: not connected within %v; retry with a longer \"timeout_ms\"", contact.ID.Short(), timeout)
		}
		return ConnectResult{}, err
	}
	result := ConnectResult{ID: contact.ID.String()}
	for _, p := range s.svc.Peers() {
		if p.ID == contact.ID {
			result.Kind = p.Kind
		}
	}
	return result, nil
}

func (s *Server) disconnect(req request) error {
	id, err := parseID(req)
	if err != nil {
		return err
	}
	if err := s.svc.Disconnect(id); err != nil {
		return fmt.Errorf("disconnecting %s: %w", id.Short(), err)
	}
	return nil
}

func (s *Server) send(req request) error {
	id, err := parseID(req)
	if err != nil {
		return err
	}
	var data []byte
	switch {
	case req.Text != nil && req.Data != nil:
		return errors.New(`send takes "text" or "data" (base64), not both`)
	case req.Text != nil:
		data = []byte(*req.Text)
	case req.Data != nil:
		data = *req.Data
	default:
		return errors.New(`send needs "text" or "data" (base64)`)
	}
	if err := s.svc.Send(id, data); err != nil {
		return fmt.Errorf("sending to %s: %w", id.Short(), err)
	}
	return nil
}

func parseID(req request) (crust.NodeID, error) {
	if req.ID == "" {
		return crust.NodeID{}, fmt.Errorf(`%s needs "id": the peer's NodeID`, req.Op)
	}
	id, err := crust.ParseNodeID(req.ID)
	if err != nil {
		return crust.NodeID{}, fmt.Errorf(`"id" %q is not a NodeID (52 base32 characters, as "peers" lists them): %v`, req.ID, err)
	}
	return id, nil
}

// subscribe registers an events subscriber; nil after Close.
func (s *Server) subscribe(remote string) *subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	sub := &subscriber{remote: remote, lines: make(chan []byte, eventBuffer)}
	s.subs[sub] = struct{}{}
	return sub
}

// unsubscribe ends sub's stream, unless Publish already did; sub may be nil.
func (s *Server) unsubscribe(sub *subscriber) {
	if sub == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.lines)
	}
}

// stream writes sub's events to c until the client closes c (what it sends is
// discarded) or the subscriber is cut off.
func (s *Server) stream(c net.Conn, r *bufio.Reader, sub *subscriber) {
	written := make(chan struct{})
	go func() { // owned by this goroutine, which waits for it below
		defer close(written)
		s.writeEvents(c, sub)
		c.Close() // ends the read below
	}()
	io.Copy(io.Discard, r)
	s.unsubscribe(sub)
	c.Close()
	<-written
}

// writeEvents writes sub's lines until Publish or unsubscribe closes them, then the
// overflow line if Publish cut sub off.
func (s *Server) writeEvents(c net.Conn, sub *subscriber) {
	w := bufio.NewWriterSize(c, 64<<10)
	for line := range sub.lines {
		sub.queued.Add(-int64(len(line)))
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(line); err != nil {
			return
		}
		if len(sub.lines) == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
	s.mu.Lock()
	overflowed := sub.overflowed
	s.mu.Unlock()
	if overflowed {
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		writeAnswer(w, Event{Type: EventOverflow})
		w.Flush()
	}
}

// logLimited logs why a request or connection was refused (or accept failed), at
// most logBurst lines a second, so that a misbehaving client cannot flood the log.
func (s *Server) logLimited(level slog.Level, msg string, args ...any) {
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	ok, unlogged := s.refusals.allow(time.Now())
	if !ok {
		return
	}
	if unlogged > 0 {
		args = append(args, "unlogged_before", unlogged)
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// logLimiter lets logBurst logs through per second and counts the others.
type logLimiter struct {
	mu       sync.Mutex
	window   time.Time
	n        int
	unlogged int
}

const logBurst = 10

// allow reports whether to log now, and how many logs were held back since the last
// one allowed.
func (l *logLimiter) allow(now time.Time) (ok bool, unlogged int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= logBurst {
		l.unlogged++
		return false, 0
	}
	l.n++
	unlogged, l.unlogged = l.unlogged, 0
	return true, unlogged
}

// errLineTooLong: a line exceeds the limit.
var errLineTooLong = errors.New("line too long")

// readLine reads one line without its "\n" (and "\r"), failing with errLineTooLong
// once it exceeds max bytes. A last line without "\n" before EOF counts as a line.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == nil:
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > max {
				return nil, errLineTooLong
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > max+1 { // +1: room for a "\r"
				return nil, errLineTooLong
			}
		case errors.Is(err, io.EOF) && len(line) > 0:
			if len(line) > max {
				return nil, errLineTooLong
			}
			return line, nil
		default:
			return nil, err
		}
	}
}

// writeAnswer writes v as one JSON line; errors show on the next write or Flush.
func writeAnswer(w io.Writer, v any) {
	line, err := json.Marshal(v)
	if err != nil {
		line, _ = json.Marshal(answer{Error: fmt.Sprintf("internal error encoding the answer: %v", err)})
	}
	w.Write(append(line, '\n'))
}

// linger half-closes c and discards what the client still sends, for a while, so
// that the last answer reaches it before the close (closing a TCP socket with unread
// data sends a reset, which can discard it).
func linger(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, c)
}

func remote(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "unix socket"
}

func (s *Server) stats() Stats {
	out := Stats{Ladder: map[string]StepCount{}}
	for k, v := range s.svc.LadderStats() {
		out.Ladder[k] = StepCount{Attempts: v.Attempts, Successes: v.Successes}
	}
	return out
}
