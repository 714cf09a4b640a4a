package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"time"
)

// maxAnswerSize bounds one answer line the client reads (a long peers list fits).
const maxAnswerSize = 64 << 20

// errStreaming: the client's connection carries an events stream.
var errStreaming = errors.New("admin client: the connection carries an events stream; Dial another for requests")

// Client talks to a daemon's admin API over one connection. Requests are sent one at
// a time; its methods are safe for concurrent use. After Events, the connection
// carries the stream only.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	done chan struct{} // closed by Close: ends the events goroutine
	wg   sync.WaitGroup

	mu        sync.Mutex // held for a request and its answer
	broken    error      // why requests can no longer be paired with answers
	streaming bool

	closeOnce sync.Once
}

// Dial connects to the admin API at addr ("unix:///abs/path", "unix:relative/path",
// "tcp://127.0.0.1:PORT" or "tcp://[::1]:PORT").
func Dial(ctx context.Context, addr string) (*Client, error) {
	network, target, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, target)
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no daemon listens on the admin address %s (is crust-node running, with this admin address?): %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the admin API at %s: %w", addr, err)
	}
	return &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), done: make(chan struct{})}, nil
}

// Close closes the connection and ends an events stream. Safe to call more than once.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		err = c.conn.Close()
	})
	c.wg.Wait()
	return err
}

// Self returns the daemon's node: its ID, contact and endpoints.
func (c *Client) Self(ctx context.Context) (Self, error) {
	var out Self
	err := c.do(ctx, request{Op: "self"}, &out)
	return out, err
}

// Peers lists the connected peers, sorted by ID.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	err := c.do(ctx, request{Op: "peers"}, &out)
	return out, err
}

// Connect asks the daemon to connect to the peer whose contact text is contact, and
// waits until it is connected or fails. The daemon gives up at ctx's deadline, or
// after 30 s without one; the error lists each step tried.
func (c *Client) Connect(ctx context.Context, contact string) (ConnectResult, error) {
	req := request{Op: "connect", Contact: contact}
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMS = max(time.Until(dl).Milliseconds(), 1)
	}
	var out ConnectResult
	err := c.do(ctx, req, &out)
	return out, err
}

// Disconnect asks the daemon to close its connection to the peer id.
func (c *Client) Disconnect(ctx context.Context, id string) error {
	return c.do(ctx, request{Op: "disconnect", ID: id}, nil)
}

// Send asks the daemon to send data to the peer id. It returns once the message is
// queued, as crust.Service.Send does.
func (c *Client) Send(ctx context.Context, id string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	return c.do(ctx, request{Op: "send", ID: id, Data: &data}, nil)
}

// Bootstrap lists the contacts in the daemon's bootstrap cache, best first; empty
// without a cache.
func (c *Client) Bootstrap(ctx context.Context) ([]BootstrapEntry, error) {
	var out []BootstrapEntry
	err := c.do(ctx, request{Op: "bootstrap"}, &out)
	return out, err
}

// Stats returns the daemon's connection statistics.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.do(ctx, request{Op: "stats"}, &out)
	return out, err
}

// Block asks the daemon to block target, a NodeID or an IP prefix ("192.0.2.0/24",
// "2001:db8::/32"; an address is a prefix of one): from now on it is neither dialled
// nor accepted, and a peer connected as (or from) it is disconnected. The daemon
// keeps the change across restarts.
func (c *Client) Block(ctx context.Context, target string) (BlockResult, error) {
	var out BlockResult
	err := c.do(ctx, request{Op: "block", Target: target}, &out)
	return out, err
}

// Unblock asks the daemon to unblock target, written as for Block. Only a target
// that is blocked as such can be unblocked: an address inside a blocked prefix
// cannot.
func (c *Client) Unblock(ctx context.Context, target string) (BlockResult, error) {
	var out BlockResult
	err := c.do(ctx, request{Op: "unblock", Target: target}, &out)
	return out, err
}

// Blocked returns the daemon's blacklists (and whitelist) as they are now.
func (c *Client) Blocked(ctx context.Context) (Blocked, error) {
	var out Blocked
	err := c.do(ctx, request{Op: "blocked"}, &out)
	return out, err
}

// Events subscribes to the daemon's events: once it returns, every event published
// after the subscription arrives on the channel, in order. The channel is closed when
// ctx is done, on Close, when the daemon closes the connection, or after an
// EventOverflow event (the subscriber fell behind). Read it steadily: while it is not
// read, the daemon's queue for this client fills. The client serves no other request
// afterwards.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.exchange(ctx, request{Op: "events"}, nil); err != nil {
		return nil, err
	}
	c.streaming = true
	c.conn.SetDeadline(time.Time{})
	events := make(chan Event, 64)
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(events)
		defer stop()
		for {
			line, err := readLine(c.r, maxAnswerSize)
			if err != nil {
				return
			}
			var ev Event
			if err := json.Unmarshal(line, &ev); err != nil {
				continue // a line this version cannot read; later ones may do
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
			if ev.Type == EventOverflow {
				return
			}
		}
	}()
	return events, nil
}

// do sends req and decodes the result into out (unless nil).
func (c *Client) do(ctx context.Context, req request, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exchange(ctx, req, out)
}

// exchange sends req and reads its answer; c.mu is held. If ctx ends first, the
// answer may still come later, so the connection is no longer usable.
func (c *Client) exchange(ctx context.Context, req request, out any) error {
	if c.broken != nil {
		return c.broken
	}
	if c.streaming {
		return errStreaming
	}
	line, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("admin client: encoding the %s request: %w", req.Op, err)
	}
	dl, _ := ctx.Deadline()
	c.conn.SetDeadline(dl)
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		c.conn.SetDeadline(time.Unix(1, 0)) // unblocks the write and the read
	})
	defer func() {
		if !stop() {
			<-cancelled // don't let it reach the next request's deadline
		}
	}()
	_, werr := c.conn.Write(append(line, '\n'))
	// Read even if the write failed: a daemon that refused the connection has sent
	// why before closing it.
	ansLine, rerr := readLine(c.r, maxAnswerSize)
	if rerr != nil {
		switch {
		case ctx.Err() != nil:
			c.broken = fmt.Errorf("admin client: a request was cancelled (%w); Dial again", ctx.Err())
			return fmt.Errorf("admin %s: %w", req.Op, ctx.Err())
		case werr != nil:
			c.broken = fmt.Errorf("admin client: connection failed: %w", werr)
			return fmt.Errorf("admin %s: sending the request: %w", req.Op, werr)
		case errors.Is(rerr, io.EOF):
			c.broken = fmt.Errorf("admin client: the daemon closed the connection; Dial again")
			return fmt.Errorf("admin %s: the daemon closed the connection before answering (it is shutting down, or refused the request)", req.Op)
		default:
			c.broken = fmt.Errorf("admin client: connection failed: %w", rerr)
			return fmt.Errorf("admin %s: reading the answer: %w", req.Op, rerr)
		}
	}
	var ans struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(ansLine, &ans); err != nil {
		return fmt.Errorf("admin %s: malformed answer from the daemon: %w", req.Op, err)
	}
	if !ans.OK {
		return &Error{Op: req.Op, Message: ans.Error}
	}
	if out != nil && len(ans.Result) > 0 {
		if err := json.Unmarshal(ans.Result, out); err != nil {
			return fmt.Errorf("admin %s: malformed result from the daemon: %w", req.Op, err)
		}
	}
	return nil
}
