package crust_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
)

// Blocking a connected peer at run time disconnects it, and refuses it both ways
// until it is unblocked.
func TestBlockAtRunTime(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	b := newNode(t, fastConfig(), nil)
	connect(t, b, a)
	a.waitConnected(b.ID(), 1)

	if err := a.Block(b.ID()); err != nil {
		t.Fatalf("Block: %v", err)
	}
	a.waitLost(b.ID(), 1, 5*time.Second)
	b.waitLost(a.ID(), 1, 5*time.Second)
	if got := a.Policy().Blacklist; !slices.Equal(got, []crust.NodeID{b.ID()}) {
		t.Errorf("Policy().Blacklist = %v, want [%s]", got, b.ID().Short())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx, a.Contact()); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("the blocked peer dialling again: %v, want a refusal saying blocked", err)
	}
	if err := a.Connect(ctx, b.Contact()); !errors.Is(err, crust.ErrBlocked) {
		t.Fatalf("dialling the blocked peer: %v, want ErrBlocked", err)
	}
	if n := a.connectedCount(b.ID()); n != 1 {
		t.Fatalf("%d PeerConnected events for the peer, want the 1 before the block", n)
	}

	if !a.Unblock(b.ID()) {
		t.Error("Unblock: the peer was not on the blacklist")
	}
	if a.Unblock(b.ID()) {
		t.Error("Unblock twice: reported a removal the second time")
	}
	connect(t, b, a)
	a.waitConnected(b.ID(), 2)
}

func TestBlockRefusesSelfAndZero(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	if err := a.Block(a.ID()); err == nil {
		t.Error("Block of the node's own NodeID: no error")
	}
	if err := a.Block(crust.NodeID{}); err == nil {
		t.Error("Block of the zero NodeID: no error")
	}
	if err := a.BlockPrefix(netip.Prefix{}); err == nil {
		t.Error("BlockPrefix of the zero Prefix: no error")
	}
	if got := a.Policy(); got.Blacklist != nil || got.BlacklistPrefixes != nil {
		t.Errorf("Policy() = %+v after refused blocks, want empty lists", got)
	}
}

// Blocking the prefix a connected peer's address is in disconnects it; peers outside
// the prefix stay.
func TestBlockPrefixAtRunTime(t *testing.T) {
	checkLeaks(t)
	a := newNode(t, fastConfig(), nil)
	b := newNode(t, fastConfig(), nil)
	cfg := fastConfig()
	cfg.ListenAddrs = []string{"[::1]:0"}
	c := newNode(t, cfg, nil)
	connect(t, b, a)
	a.waitConnected(b.ID(), 1)
	connect(t, a, c) // over ::1
	a.waitConnected(c.ID(), 1)

	if err := a.BlockPrefix(netip.MustParsePrefix("127.0.0.0/8")); err != nil {
		t.Fatalf("BlockPrefix: %v", err)
	}
	a.waitLost(b.ID(), 1, 5*time.Second)
	// Refused both ways from now on: b's address at a's accept loop, b's endpoint in
	// a's dials.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx, a.Contact()); err == nil {
		t.Fatal("the peer in the blocked prefix connected again")
	}
	if err := a.Connect(ctx, b.Contact()); err == nil {
		t.Fatal("dialled a peer in the blocked prefix")
	}
	if n := a.connectedCount(b.ID()); n != 1 {
		t.Fatalf("%d PeerConnected events for the peer, want the 1 before the block", n)
	}
	if got, want := a.Policy().BlacklistPrefixes, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}; !slices.Equal(got, want) {
		t.Errorf("Policy().BlacklistPrefixes = %v, want %v", got, want)
	}
	// The peer on ::1 is still connected: a message gets through.
	if err := a.Send(c.ID(), []byte("still here")); err != nil {
		t.Fatalf("sending to the peer on ::1 after blocking 127.0.0.0/8: %v", err)
	}
	c.waitUntil(5*time.Second, "the message", func() bool { return c.received[a.ID()] == 1 })
	if n := len(a.lostReasons(c.ID())); n != 0 {
		t.Errorf("the peer on ::1 was lost (%v); only 127.0.0.0/8 is blocked", a.lostReasons(c.ID()))
	}
	if !a.UnblockPrefix(netip.MustParsePrefix("::ffff:127.0.0.0/104")) {
		t.Error("UnblockPrefix of the IPv4-mapped form: not removed")
	}
	if got := a.Policy().BlacklistPrefixes; got != nil {
		t.Errorf("Policy().BlacklistPrefixes after UnblockPrefix = %v, want none", got)
	}
}
