package crust_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/crust-p2p/crust"
)

// streamChildEnv makes the test binary run a stream receiver (runStreamChild) instead
// of the tests; its value is the path of the counter file the child shares with the
// test. It is handled in an init function so that TestMain need not know of it.
const streamChildEnv = "CRUST_TEST_STREAM_CHILD"

// streamCounters is the layout of the counter file, mapped shared by the child and
// the test: the child's counts survive its SIGKILL in the page cache, so the test
// reads exactly how many messages arrived before the kill.
type streamCounters struct {
	received   atomic.Uint64 // messages handed to OnMessage
	outOfOrder atomic.Uint64 // messages whose sequence number was not the next one
}

func init() {
	if path := os.Getenv(streamChildEnv); path != "" {
		runStreamChild(path)
		os.Exit(0)
	}
}

// mapCounters maps the counter file at path (created at one page) shared.
func mapCounters(path string) (*streamCounters, func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(os.Getpagesize())); err != nil {
		return nil, nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return (*streamCounters)(unsafe.Pointer(&mem[0])), func() { unix.Munmap(mem) }, nil
}

// runStreamChild runs a node on loopback that counts the messages it receives, and
// checks their order, in the shared counter file; it prints its contact and serves
// until it is killed.
func runStreamChild(path string) {
	counters, _, err := mapCounters(path)
	if err != nil {
		os.Exit(2)
	}
	svc, err := crust.New(crust.Config{
		ListenAddrs: []string{"127.0.0.1:0"},
		Limits:      crust.Limits{PeerMessageRate: -1, PeerByteRate: -1},
		OnMessage: func(m crust.Message) {
			seq := binary.BigEndian.Uint64(m.Data)
			if seq != counters.received.Load() {
				counters.outOfOrder.Add(1)
			}
			counters.received.Add(1)
		},
	})
	if err != nil {
		os.Exit(2)
	}
	os.Stdout.WriteString(svc.Contact().String() + "\n")
	for range svc.Events() {
	}
}

// A peer process killed with SIGKILL while a stream of messages runs to it: the
// sender learns of the loss from the socket, not from the keepalive timeout, a Send
// blocked on the full queue returns ErrNotConnected, later Sends fail with
// ErrNotConnected, and nothing is left running. It protects the handling of a
// connection error in the middle of a write burst: a session that ignored its
// reader's or writer's error, or a send queue that was not closed with it, would
// leave the sender blocked in Send until the test times out. The test also reports
// how many accepted messages (Send returned nil) never reached the peer, and checks
// that each of them came back in an Undelivered event: none is lost silently. The
// sender reconnects for 2 s (ReconnectFor) and holds them for a resume meanwhile;
// the peer does not come back, so they come back once it stops.
func TestPeerKilledMidStream(t *testing.T) {
	for _, tc := range []struct {
		proto string
		// peerTimeout is the sender's PeerTimeout; loss is the bound on the time from
		// the kill to PeerLost.
		peerTimeout, loss time.Duration
	}{
		// The kernel resets a killed process's TCP connections: the loss is seen on
		// the socket at once, long before the 30 s timeout.
		{"tcp", 30 * time.Second, 2 * time.Second},
		// Nothing answers for a killed QUIC endpoint (ICMP errors are ignored): the
		// loss comes from the keepalive timeout, PeerTimeout + KeepaliveInterval.
		{"quic", time.Second, time.Second + 200*time.Millisecond + time.Second},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			checkLeaks(t)
			counterPath := filepath.Join(t.TempDir(), "counters")
			counters, unmap, err := mapCounters(counterPath)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(unmap)

			cmd, contact := startChildNode(t, streamChildEnv+"="+counterPath)

			cfg := fastConfig()
			cfg.Protocols = []string{tc.proto}
			cfg.PeerTimeout = tc.peerTimeout
			cfg.SendBlocks = true // the hang to rule out: a Send waiting for room forever
			cfg.ReconnectFor = 2 * time.Second
			a := newNode(t, cfg, nil)
			connectTo(t, a, contact)

			var accepted atomic.Uint64
			sendErr := make(chan error, 1)
			go func() {
				msg := make([]byte, 64)
				for seq := uint64(0); ; seq++ {
					binary.BigEndian.PutUint64(msg, seq)
					if err := a.Send(contact.ID, msg); err != nil {
						sendErr <- err
						return
					}
					accepted.Add(1)
				}
			}()

			// Kill the child in the middle of the stream.
			const before = 50_000
			deadline := time.Now().Add(10 * time.Second)
			for counters.received.Load() < before {
				if time.Now().After(deadline) {
					t.Fatalf("the child received %d messages in 10 s, want %d before the kill", counters.received.Load(), before)
				}
				time.Sleep(time.Millisecond) // polling a counter in another process
			}
			killed := time.Now()
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait() // the child is gone: its counters are final

			a.waitLost(contact.ID, 1, tc.loss+5*time.Second)
			lostAfter := time.Since(killed)
			var err2 error
			select {
			case err2 = <-sendErr:
			case <-time.After(5 * time.Second):
				t.Fatalf("Send still blocked 5 s after PeerLost (%d accepted)", accepted.Load())
			}
			unblocked := time.Since(killed)
			if !errors.Is(err2, crust.ErrNotConnected) {
				t.Errorf("the streaming Send ended with %v, want ErrNotConnected", err2)
			}
			if err := a.Send(contact.ID, []byte("after")); !errors.Is(err, crust.ErrNotConnected) {
				t.Errorf("Send after the loss: %v, want ErrNotConnected", err)
			}
			sent, got, bad := accepted.Load(), counters.received.Load(), counters.outOfOrder.Load()
			// What was accepted and not delivered must come back in Undelivered events
			// once the sender stops reconnecting: every sequence number from the
			// child's count on.
			a.waitUntil(cfg.ReconnectFor+5*time.Second, "Undelivered once reconnecting stops", func() bool {
				return slices.ContainsFunc(a.order, func(ev crust.Event) bool { _, ok := ev.(crust.Undelivered); return ok })
			})
			backAfter := time.Since(killed)
			givenBack := make(map[uint64]bool)
			var unacked, unsent int
			for _, ev := range a.events() {
				if u, ok := ev.(crust.Undelivered); ok && u.ID == contact.ID {
					unacked += len(u.Unacknowledged)
					unsent += len(u.Unsent)
					for _, m := range append(u.Unacknowledged, u.Unsent...) {
						givenBack[binary.BigEndian.Uint64(m)] = true
					}
				}
			}
			silent, delivered := 0, 0 // accepted, neither delivered nor given back; given back, yet delivered
			for seq := got; seq < sent; seq++ {
				if !givenBack[seq] {
					silent++
				}
			}
			for seq := range givenBack {
				if seq < got {
					delivered++
				}
			}
			t.Logf("%s: PeerLost %v after the kill (%v), the blocked Send returned %v after the kill, Undelivered %v after it; %d messages accepted by Send, %d received by the child before the kill, %d accepted but not delivered; given back: %d unacknowledged (%d of them had arrived) + %d unsent; lost silently: %d",
				tc.proto, lostAfter.Round(time.Millisecond), a.lostReasons(contact.ID), unblocked.Round(time.Millisecond), backAfter.Round(time.Millisecond), sent, got, int64(sent)-int64(got), unacked, delivered, unsent, silent)
			if lostAfter > tc.loss {
				t.Errorf("PeerLost came %v after the kill, want within %v", lostAfter, tc.loss)
			}
			if got > sent || bad != 0 {
				t.Errorf("the child received %d of %d sent, %d out of order", got, sent, bad)
			}
			if silent != 0 {
				t.Errorf("%d accepted messages neither delivered nor given back in Undelivered", silent)
			}
		})
	}
}
