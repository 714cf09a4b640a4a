package admin_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
)

// recordingStore is a BlockStore that records its calls, failing with err if set.
type recordingStore struct {
	mu    sync.Mutex
	calls []string
	err   error
	note  string
}

func (s *recordingStore) Block(t admin.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "block "+t.String())
	return s.err
}

func (s *recordingStore) Unblock(t admin.Target) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "unblock "+t.String())
	return s.note, s.err
}

func (s *recordingStore) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// TestBlockRoundTrip blocks a connected peer through the admin API: it is
// disconnected, refused, listed and recorded; unblocked, it connects again.
func TestBlockRoundTrip(t *testing.T) {
	checkLeaks(t)
	store := &recordingStore{note: "a note"}
	a := startNode(t, admin.WithBlockStore(store))
	b := startNode(t)
	c := dial(t, a.unix)
	ctx := testContext(t)
	bID := b.svc.ID().String()

	if _, err := dial(t, b.unix).Connect(ctx, a.svc.Contact().String()); err != nil {
		t.Fatalf("B connecting to A: %v", err)
	}
	a.waitEvent("A's PeerConnected", func(ev crust.Event) bool { _, ok := ev.(crust.PeerConnected); return ok })

	res, err := c.Block(ctx, bID)
	if err != nil || res != (admin.BlockResult{Target: bID, Changed: true}) {
		t.Fatalf("Block(B) = %+v, %v; want changed", res, err)
	}
	a.waitEvent("A's PeerLost", func(ev crust.Event) bool { _, ok := ev.(crust.PeerLost); return ok })
	if _, err := dial(t, b.unix).Connect(ctx, a.svc.Contact().String()); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("B connecting to A after the block: %v, want a refusal saying blocked", err)
	}
	if res, err := c.Block(ctx, " "+bID+" "); err != nil || res.Changed {
		t.Errorf("Block(B) again = %+v, %v; want unchanged", res, err)
	}
	if res, err := c.Block(ctx, "::ffff:127.0.0.1"); err != nil || res != (admin.BlockResult{Target: "127.0.0.1/32", Changed: true}) {
		t.Errorf("Block(::ffff:127.0.0.1) = %+v, %v; want 127.0.0.1/32 changed", res, err)
	}
	if res, err := c.Block(ctx, "2001:db8::/32"); err != nil || res.Target != "2001:db8::/32" {
		t.Errorf("Block(2001:db8::/32) = %+v, %v", res, err)
	}
	blocked, err := c.Blocked(ctx)
	want := admin.Blocked{IDs: []string{bID}, Prefixes: []string{"127.0.0.1/32", "2001:db8::/32"}, Whitelist: []string{}}
	if err != nil || !slices.Equal(blocked.IDs, want.IDs) || !slices.Equal(blocked.Prefixes, want.Prefixes) || len(blocked.Whitelist) != 0 {
		t.Errorf("Blocked = %+v, %v; want %+v", blocked, err, want)
	}
	// On the wire, empty lists are [], not null.
	if a := dialRaw(t, b.unix).ask(`{"op":"blocked"}`); !a.OK || string(a.Result) != `{"ids":[],"prefixes":[],"whitelist":[]}` {
		t.Errorf("blocked answer of a node with nothing blocked: %+v", a)
	}

	if _, err := c.Unblock(ctx, "127.0.0.0/8"); err == nil || !strings.Contains(err.Error(), "overlaps the blocked 127.0.0.1/32") {
		t.Errorf("Unblock of a prefix wider than the blocked one: %v, want it to name 127.0.0.1/32", err)
	}
	if res, err := c.Unblock(ctx, "127.0.0.1"); err != nil || res != (admin.BlockResult{Target: "127.0.0.1/32", Changed: true, Note: "a note"}) {
		t.Errorf("Unblock(127.0.0.1) = %+v, %v", res, err)
	}
	if res, err := c.Unblock(ctx, bID); err != nil || !res.Changed {
		t.Errorf("Unblock(B) = %+v, %v", res, err)
	}
	var ae *admin.Error
	if _, err := c.Unblock(ctx, bID); !errors.As(err, &ae) || ae.Op != "unblock" || !strings.Contains(ae.Message, "is not blocked") {
		t.Errorf("Unblock(B) again: %v, want an admin.Error saying it is not blocked", err)
	}
	if _, err := dial(t, b.unix).Connect(ctx, a.svc.Contact().String()); err != nil {
		t.Errorf("B connecting to A after the unblock: %v", err)
	}

	wantCalls := []string{"block " + bID, "block " + bID, "block 127.0.0.1/32", "block 2001:db8::/32", "unblock 127.0.0.1/32", "unblock " + bID}
	if got := store.recorded(); !slices.Equal(got, wantCalls) {
		t.Errorf("the store saw\n%q\nwant\n%q", got, wantCalls)
	}
}

func TestBlockBadInput(t *testing.T) {
	checkLeaks(t)
	store := &recordingStore{}
	n := startNode(t, admin.WithBlockStore(store))
	c := dial(t, n.tcp)
	ctx := testContext(t)
	self := n.svc.ID().String()
	for _, tc := range []struct {
		op, target, want string
	}{
		{"block", "", `block needs "target"`},
		{"unblock", "", `unblock needs "target"`},
		{"block", "nonsense", `"nonsense" is neither a NodeID`},
		{"block", self[:51], "is neither a NodeID (52 base32 characters"},
		{"block", "300.1.2.3", `"300.1.2.3" is not an IP address`},
		{"block", "192.0.2.7/24", "did you mean 192.0.2.0/24 (the network) or 192.0.2.7/32 (the one address)?"},
		{"block", "192.0.2.0/33", `"192.0.2.0/33" is not an IP prefix`},
		{"block", "fe80::1%eth0", "has no zone"},
		{"block", self, "this node's own NodeID"},
		{"unblock", "192.0.2.0/24", "192.0.2.0/24 is not blocked"},
	} {
		var err error
		if tc.op == "block" {
			_, err = c.Block(ctx, tc.target)
		} else {
			_, err = c.Unblock(ctx, tc.target)
		}
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Op != tc.op || !strings.Contains(ae.Message, tc.want) {
			t.Errorf("%s %q: %v, want an admin.Error containing %q", tc.op, tc.target, err, tc.want)
		}
	}
	if got := store.recorded(); len(got) != 0 {
		t.Errorf("refused requests reached the store: %q", got)
	}
	if lists := n.svc.Policy(); lists.Blacklist != nil || lists.BlacklistPrefixes != nil {
		t.Errorf("refused requests changed the lists: %+v", lists)
	}
}

// A block the store fails to save still holds on the node; the answer says it was
// not saved.
func TestBlockStoreFails(t *testing.T) {
	checkLeaks(t)
	n := startNode(t, admin.WithBlockStore(&recordingStore{err: errors.New("disk full")}))
	c := dial(t, n.unix)
	ctx := testContext(t)
	_, err := c.Block(ctx, "192.0.2.0/24")
	if err == nil || !strings.Contains(err.Error(), "saving it failed") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Block with a failing store: %v, want it to say saving failed, and why", err)
	}
	if !slices.Contains(n.svc.Policy().BlacklistPrefixes, netip.MustParsePrefix("192.0.2.0/24")) {
		t.Error("the block was undone when saving failed")
	}
	if _, err := c.Unblock(ctx, "192.0.2.0/24"); err == nil || !strings.Contains(err.Error(), "saving it failed") {
		t.Errorf("Unblock with a failing store: %v, want it to say saving failed", err)
	}
}

func TestParseTarget(t *testing.T) {
	var id crust.NodeID
	id[0] = 7
	for _, tc := range []struct {
		in   string
		want admin.Target
	}{
		{id.String(), admin.Target{ID: id}},
		{strings.ToUpper(id.String()), admin.Target{ID: id}},
		{"192.0.2.0/24", admin.Target{Prefix: netip.MustParsePrefix("192.0.2.0/24")}},
		{"192.0.2.7", admin.Target{Prefix: netip.MustParsePrefix("192.0.2.7/32")}},
		{"::ffff:192.0.2.7", admin.Target{Prefix: netip.MustParsePrefix("192.0.2.7/32")}},
		{"::ffff:192.0.2.0/120", admin.Target{Prefix: netip.MustParsePrefix("192.0.2.0/24")}},
		{"2001:db8::/32", admin.Target{Prefix: netip.MustParsePrefix("2001:db8::/32")}},
		{"::1", admin.Target{Prefix: netip.MustParsePrefix("::1/128")}},
		{"0.0.0.0/0", admin.Target{Prefix: netip.MustParsePrefix("0.0.0.0/0")}},
	} {
		got, err := admin.ParseTarget(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := admin.ParseTarget(got.String()); err != nil || back != got {
			t.Errorf("ParseTarget(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}
