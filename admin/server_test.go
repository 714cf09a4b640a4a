package admin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
)

func TestSelf(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	for name, addr := range map[string]string{"unix": n.unix, "tcp": n.tcp} {
		t.Run(name, func(t *testing.T) {
			self, err := dial(t, addr).Self(testContext(t))
			if err != nil {
				t.Fatalf("Self: %v", err)
			}
			if self.ID != n.svc.ID().String() {
				t.Errorf("id %s, want %s", self.ID, n.svc.ID())
			}
			if want := n.svc.Contact().String(); self.Contact != want {
				t.Errorf("contact %q, want %q", self.Contact, want)
			}
			if len(self.Endpoints) == 0 || !strings.HasPrefix(self.Endpoints[0], "tcp://127.0.0.1:") {
				t.Errorf("endpoints %q, want tcp://127.0.0.1:PORT", self.Endpoints)
			}
			if self.Reflected == nil || self.NAT.Reflected == nil {
				t.Errorf("reflected %v, nat %+v: want [] rather than null", self.Reflected, self.NAT)
			}
		})
	}
}

// TestConnectSendDisconnect drives node A through its admin API: connect to B, list
// peers, send, disconnect; B's service and B's admin event stream see it all.
func TestConnectSendDisconnect(t *testing.T) {
	checkLeaks(t)
	a, b := startNode(t), startNode(t)
	ctx := testContext(t)
	ca := dial(t, a.unix)
	bSelf, err := dial(t, b.tcp).Self(ctx)
	if err != nil {
		t.Fatalf("B Self: %v", err)
	}
	bEvents, err := dial(t, b.unix).Events(ctx)
	if err != nil {
		t.Fatalf("B Events: %v", err)
	}

	res, err := ca.Connect(ctx, bSelf.Contact)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if res.ID != bSelf.ID || res.Kind != crust.StepTCPDirect {
		t.Errorf("Connect: %+v, want id %s kind %s", res, bSelf.ID, crust.StepTCPDirect)
	}
	peers, err := ca.Peers(ctx)
	if err != nil {
		t.Fatalf("Peers: %v", err)
	}
	if len(peers) != 1 || peers[0].ID != bSelf.ID || peers[0].Kind != "tcp-direct" || !peers[0].Outbound ||
		peers[0].Addr == "" || peers[0].LocalAddr == "" || peers[0].Since.IsZero() {
		t.Fatalf("Peers: %+v, want B over tcp-direct, outbound", peers)
	}
	ev := nextEvent(t, bEvents, admin.EventConnected)
	if ev.ID != a.svc.ID().String() || ev.Kind != "tcp-direct" || ev.Outbound {
		t.Errorf("B's connected event %+v, want A, tcp-direct, inbound", ev)
	}

	msg := []byte("hello over the admin API")
	if err := ca.Send(ctx, bSelf.ID, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := b.waitEvent("B's service receiving the message", func(ev crust.Event) bool {
		m, ok := ev.(crust.Message)
		return ok && m.From == a.svc.ID()
	}).(crust.Message)
	if !bytes.Equal(got.Data, msg) {
		t.Errorf("B received %q, want %q", got.Data, msg)
	}
	ev = nextEvent(t, bEvents, admin.EventMessage)
	if ev.From != a.svc.ID().String() || ev.Text != string(msg) || !bytes.Equal(ev.Data, msg) {
		t.Errorf("B's message event %+v, want from A with text %q", ev, msg)
	}
	binary := []byte{0xff, 0, 0xfe}
	if err := ca.Send(ctx, bSelf.ID, binary); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ev = nextEvent(t, bEvents, admin.EventMessage)
	if ev.Text != "" || !bytes.Equal(ev.Data, binary) {
		t.Errorf("B's message event %+v, want data %x and no text", ev, binary)
	}

	if err := ca.Disconnect(ctx, bSelf.ID); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	ev = nextEvent(t, bEvents, admin.EventLost)
	if ev.ID != a.svc.ID().String() || ev.Reason == "" {
		t.Errorf("B's lost event %+v, want A with a reason", ev)
	}
	a.waitEvent("A's PeerLost", func(ev crust.Event) bool { _, ok := ev.(crust.PeerLost); return ok })
	if peers, err := ca.Peers(ctx); err != nil || len(peers) != 0 {
		t.Errorf("Peers after Disconnect: %+v, %v; want none", peers, err)
	}
	err = ca.Send(ctx, bSelf.ID, msg)
	var ae *admin.Error
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, crust.ErrNotConnected.Error()) {
		t.Errorf("Send after Disconnect: %v, want an admin.Error saying %q", err, crust.ErrNotConnected)
	}
}

// nextEvent reads events until one of type typ, failing after 5 s.
func nextEvent(t *testing.T, events <-chan admin.Event, typ string) admin.Event {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended while waiting for %q", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("timed out waiting for a %q event", typ)
		}
	}
}

func TestConnectFailures(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	c := dial(t, n.unix)
	ctx := testContext(t)
	self, err := c.Self(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A contact whose endpoint nobody listens on: a closed loopback port.
	closed := startNode(t)
	closedContact := closed.svc.Contact().String()
	closedID := closed.svc.ID()
	closed.srv.Close()
	closed.svc.Close()

	for _, tc := range []struct {
		name, contact, want string
	}{
		{"not a contact", "nonsense", "parsing the contact"},
		{"self", self.Contact, crust.ErrSelf.Error()},
		{"nobody listening", closedContact, "tcp-direct"}, // the ladder lists its steps
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Connect(ctx, tc.contact)
			var ae *admin.Error
			if !errors.As(err, &ae) || ae.Op != "connect" || !strings.Contains(ae.Message, tc.want) {
				t.Errorf("Connect: %v, want an admin.Error containing %q", err, tc.want)
			}
		})
	}
	if err := c.Disconnect(ctx, closedID.String()); err == nil || !strings.Contains(err.Error(), crust.ErrNotConnected.Error()) {
		t.Errorf("Disconnect of a peer never connected: %v, want %q", err, crust.ErrNotConnected)
	}
}

func TestBootstrapWithoutCache(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	entries, err := dial(t, n.tcp).Bootstrap(testContext(t))
	if err != nil || entries == nil || len(entries) != 0 {
		t.Errorf("Bootstrap: %v, %v; want [] without error", entries, err)
	}
	a := dialRaw(t, n.unix).ask(`{"op":"bootstrap"}`)
	if !a.OK || string(a.Result) != "[]" {
		t.Errorf("bootstrap answer %+v, want result []", a)
	}
}

func TestEventsOverflow(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	events, err := dial(t, n.unix).Events(testContext(t))
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	// Nobody reads events while they are published: the socket, then the queue
	// fills, and Publish must cut the subscriber off rather than wait.
	msg := crust.Message{From: n.svc.ID(), Data: bytes.Repeat([]byte{0xff}, 4096)}
	const published = 5000
	for range published {
		n.srv.Publish(msg)
	}
	var received int
	var last admin.Event
	for ev := range events {
		received++
		last = ev
	}
	if last.Type != admin.EventOverflow {
		t.Errorf("last event %+v, want overflow", last)
	}
	if received < 1024 || received >= published {
		t.Errorf("%d events before the stream ended, want the queue's 1024 or more and fewer than %d", received, published)
	}
	if !strings.Contains(n.logs.String(), "fell behind") {
		t.Errorf("no warning logged for the cut-off subscriber")
	}
	// The Server still serves.
	if _, err := dial(t, n.unix).Self(testContext(t)); err != nil {
		t.Errorf("Self after the overflow: %v", err)
	}
}

func TestEventsEndWithContext(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	c := dial(t, n.tcp)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	cancel()
	for range events {
	}
	if _, err := c.Self(testContext(t)); err == nil {
		t.Errorf("Self on a streaming client succeeded, want an error")
	}
}

// TestCloseEndsEverything closes the Server under an idle client, an event stream and
// a connect in progress: all end, and the cleanup's goleak check finds nothing left.
func TestCloseEndsEverything(t *testing.T) {
	checkLeaks(t)
	n := startNode(t)
	idle := dial(t, n.unix)
	if _, err := idle.Self(testContext(t)); err != nil {
		t.Fatal(err)
	}
	events, err := dial(t, n.tcp).Events(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	// A peer that accepts TCP and never answers: the connect waits in the handshake
	// until Close cancels it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c
		}
	}()
	id := n.svc.ID() // any NodeID other than the node's own does
	id[0] ^= 1
	connecting := dial(t, n.unix)
	connectDone := make(chan error, 1)
	go func() {
		_, err := connecting.Connect(context.Background(), fmt.Sprintf("%s@tcp://%s", id, silent.Addr()))
		connectDone <- err
	}()
	select {
	case held := <-accepted:
		defer held.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the connect request never reached the silent peer")
	}
	n.srv.Close()
	for range events {
	}
	if _, err := idle.Self(testContext(t)); err == nil {
		t.Errorf("Self after Close succeeded")
	}
	if err := <-connectDone; err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Connect during Close: %v, want \"shutting down\"", err)
	}
	if _, err := admin.Dial(context.Background(), n.unix); err == nil || !strings.Contains(err.Error(), "no daemon") {
		t.Errorf("Dial after Close: %v, want \"no daemon listens\"", err)
	}
}
