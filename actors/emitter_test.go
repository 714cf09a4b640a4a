package actors

import (
	"testing"
	"time"

	"github.com/crust-p2p/crust/transport/identity"
)

// Control events never block; data events stop at the bound until the application
// reads; everything comes out in the order it went in.
func TestEmitterOrderAndBound(t *testing.T) {
	e := NewEmitter(1, 2, 1<<20)
	go e.Run()
	defer e.Close()
	id := identity.NodeID{1}
	e.Control(PeerConnected{ID: id})
	if !e.Data(batchOf(Message{From: id, Data: []byte{0}}, Message{From: id, Data: []byte{1}}), nil) {
		t.Fatal("first batch refused")
	}
	// The bound (2 data events) is reached: a third batch waits until the
	// application reads (or goes through if the dispatcher already delivered some).
	blocked := make(chan bool)
	go func() { blocked <- e.Data(batchOf(Message{From: id, Data: []byte{2}}), nil) }()
	for i := 0; i < 100; i++ {
		e.Control(PeerLost{ID: id, Reason: "control never blocks"})
	}
	want := []byte{0, 1, 2}
	var got []byte
	var lost int
	for len(got) < len(want) || lost < 100 {
		switch ev := (<-e.Events()).(type) {
		case Message:
			if lost > 0 && ev.Data[0] < 2 {
				t.Fatalf("message %d after the PeerLost events queued behind it", ev.Data[0])
			}
			got = append(got, ev.Data[0])
		case PeerLost:
			lost++
		case PeerConnected:
			if len(got) > 0 {
				t.Fatal("PeerConnected after messages")
			}
		}
	}
	if !<-blocked {
		t.Fatal("blocked batch was refused")
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages in order %v, want %v", got, want)
		}
	}
}

// A reader blocked on a full emitter is released by abort, and Close releases all.
func TestEmitterAbortAndClose(t *testing.T) {
	e := NewEmitter(0, 1, 1<<20)
	go e.Run()
	id := identity.NodeID{1}
	e.Data(batchOf(Message{From: id}), nil)
	abort := make(chan struct{})
	res := make(chan bool, 2)
	go func() { res <- e.Data(batchOf(Message{From: id}), abort) }()
	close(abort)
	if <-res {
		t.Fatal("aborted Data reported success")
	}
	go func() { res <- e.Data(batchOf(Message{From: id}), nil) }()
	e.Close()
	if <-res {
		t.Fatal("Data after Close reported success")
	}
	for range e.Events() { // closed: drains what was left, then ends
	}
}

// The byte bound holds back data even while few messages are queued.
func TestEmitterByteBound(t *testing.T) {
	e := NewEmitter(0, 1000, 10)
	go e.Run()
	defer e.Close()
	id := identity.NodeID{1}
	if !e.Data(batchOf(Message{From: id, Data: make([]byte, 10)}), nil) {
		t.Fatal("first batch refused")
	}
	abort := make(chan struct{})
	res := make(chan bool, 1)
	go func() { res <- e.Data(batchOf(Message{From: id, Data: make([]byte, 1)}), abort) }()
	select {
	case <-res:
		t.Fatal("a batch went in past the byte bound while nothing was read")
	case <-time.After(50 * time.Millisecond): // no event can arrive: nothing reads
	}
	<-e.Events() // reading makes room
	if !<-res {
		t.Fatal("the waiting batch was refused")
	}
	close(abort)
}

// batchOf returns a batch of msgs for Emitter.Data.
func batchOf(msgs ...Message) *msgBatch {
	b := newBatch()
	for _, m := range msgs {
		b.add(m)
	}
	return b
}
