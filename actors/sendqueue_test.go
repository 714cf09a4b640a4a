package actors

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/crust-p2p/crust/transport/wire"
)

func TestSendQueueBounds(t *testing.T) {
	tests := []struct {
		name             string
		maxMsgs, maxByte int
		sizes            []int
		wantErr          []error
	}{
		{"message count", 2, 1 << 20, []int{1, 1, 1}, []error{nil, nil, ErrQueueFull}},
		{"bytes", 100, 10, []int{6, 4, 1}, []error{nil, nil, ErrQueueFull}},
		{"one large message into an empty queue", 100, 10, []int{50, 1}, []error{nil, ErrQueueFull}},
		{"large message behind a small one", 100, 10, []int{1, 50}, []error{nil, ErrQueueFull}},
		{"beyond the arena", 100, 1 << 20, []int{arenaMax + 1, 3}, []error{nil, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newSendQueue(tc.maxMsgs, tc.maxByte)
			for i, size := range tc.sizes {
				if err := q.push(make([]byte, size), false, nil); !errors.Is(err, tc.wantErr[i]) {
					t.Errorf("push %d (%d bytes): %v, want %v", i, size, err, tc.wantErr[i])
				}
			}
		})
	}
}

// Messages come out in order with the bytes that went in, as Data frames, even though
// the caller reuses its buffer and the arena is recycled between batches; a large
// message between small ones keeps its place.
func TestSendQueueCopiesAndRecycles(t *testing.T) {
	q := newSendQueue(1000, 4<<20)
	var want [][]byte
	var stream bytes.Buffer
	fw := wire.NewWriter(&stream, 1<<10)
	for round := range 3 {
		for i := range 10 {
			size := 8
			if i == 5 {
				size = arenaMax + 1 // framed by the writer
			}
			if round == 1 && i < 3 {
				size = 20 << 10 / 3 // three fill most of a chunk: the next starts a new one
			}
			buf := bytes.Repeat([]byte{byte(round*10 + i)}, size)
			if err := q.push(buf, false, nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, bytes.Clone(buf))
			clear(buf)
		}
		o := q.pop()
		if o.msgs != 10 {
			t.Fatalf("round %d: popped %d messages", round, o.msgs)
		}
		for _, seg := range o.segs {
			var err error
			if seg.frames != nil {
				err = fw.WriteFrames(seg.frames)
			} else {
				err = fw.WriteData(seg.large)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		q.recycle(o)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	fr := wire.NewReader(&stream, 1<<10, wire.DefaultMaxFrameSize)
	for i, w := range want {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Msg != nil || !bytes.Equal(f.Data, w) {
			t.Fatalf("frame %d = %v %d bytes, want %d bytes of %d", i, f.Msg, len(f.Data), len(w), w[0])
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

func TestSendQueueBlockingPush(t *testing.T) {
	q := newSendQueue(1, 1<<20)
	if err := q.push([]byte("a"), true, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- q.push([]byte("b"), true, nil) }()
	q.recycle(q.pop()) // makes room: the blocked push goes through
	if err := <-done; err != nil {
		t.Fatalf("blocked push: %v", err)
	}
	go func() { done <- q.push([]byte("c"), true, nil) }()
	q.close() // a closed queue releases the waiter with ErrNotConnected
	if err := <-done; !errors.Is(err, ErrNotConnected) {
		t.Fatalf("push into a closed queue: %v", err)
	}
	cancel := make(chan struct{})
	q2 := newSendQueue(1, 1<<20)
	q2.push([]byte("a"), true, nil)
	go func() { done <- q2.push([]byte("b"), true, cancel) }()
	close(cancel)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("cancelled push: %v", err)
	}
}

// The queue numbers what it pops from where startAt puts it, and resend queues held
// messages from base on, in order and past the limits, dropping those before base and
// returning those that do not follow on.
func TestSendQueueResend(t *testing.T) {
	held := func(from, to uint64) []heldMsg {
		var out []heldMsg
		for pos := from; pos < to; pos++ {
			out = append(out, heldMsg{pos: pos, data: []byte{byte(pos)}})
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		held             []heldMsg
		base             uint64
		resent, left     int
		firstQueued, pop uint64
	}{
		{"from the middle", held(5, 15), 8, 7, 0, 8, 15},
		{"all arrived", held(5, 15), 15, 0, 0, 0, 15},
		{"none arrived", held(5, 15), 5, 10, 0, 5, 15},
		{"shuffled", append(held(10, 15), held(5, 10)...), 6, 9, 0, 6, 15},
		{"a gap", append(held(5, 8), held(9, 12)...), 6, 2, 3, 6, 8},
		{"starts past base", held(9, 12), 6, 0, 3, 0, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newSendQueue(2, 2) // limits a resend ignores
			q.startAt(tc.base)
			resent, left := q.resend(tc.held, tc.base)
			if resent != tc.resent || len(left) != tc.left {
				t.Fatalf("resent %d, %d left; want %d and %d", resent, len(left), tc.resent, tc.left)
			}
			o := q.pop()
			if o.msgs != resent || o.first != tc.base {
				t.Fatalf("popped %d messages from %d, want %d from %d", o.msgs, o.first, resent, tc.base)
			}
			for i, m := range o.messages() {
				if want := byte(tc.firstQueued) + byte(i); m[0] != want {
					t.Fatalf("message %d is %d, want %d", i, m[0], want)
				}
			}
			if next := q.pop(); next.first != tc.pop {
				t.Fatalf("the next pop starts at %d, want %d", next.first, tc.pop)
			}
		})
	}
}
