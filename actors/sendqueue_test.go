package actors

import (
	"bytes"
	"errors"
	"testing"
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

// Messages come out in order with the bytes that went in, even though the caller
// reuses its buffer and the arena is recycled between batches.
func TestSendQueueCopiesAndRecycles(t *testing.T) {
	q := newSendQueue(1000, 1<<20)
	buf := make([]byte, 8)
	var got [][]byte
	for round := range 3 {
		for i := range 10 {
			for j := range buf {
				buf[j] = byte(round*10 + i)
			}
			if err := q.push(buf, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		msgs, chunks := q.pop()
		for _, m := range msgs {
			got = append(got, bytes.Clone(m))
		}
		q.recycle(msgs, chunks)
	}
	if len(got) != 30 {
		t.Fatalf("got %d messages", len(got))
	}
	for i, m := range got {
		if !bytes.Equal(m, bytes.Repeat([]byte{byte(i)}, 8)) {
			t.Fatalf("message %d = %v", i, m)
		}
	}
}

func TestSendQueueBlockingPush(t *testing.T) {
	q := newSendQueue(1, 1<<20)
	if err := q.push([]byte("a"), true, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- q.push([]byte("b"), true, nil) }()
	msgs, chunks := q.pop() // makes room: the blocked push goes through
	q.recycle(msgs, chunks)
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
