package actors

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
)

type panicky struct {
	handled chan<- string
}

type boom struct{}
type ping struct{ id string }

func (p *panicky) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case boom:
		panic("boom")
	case ping:
		p.handled <- m.id
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An actor that panics far more often than hollywood's MaxRestarts (3) keeps running
// and handles the next message: without the middleware, the fourth panic would crash
// the process.
func TestRecoverPanicsKeepsActorAlive(t *testing.T) {
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil))
	handled := make(chan string, 1)
	pid := engine.Spawn(func() actor.Receiver { return &panicky{handled: handled} }, "panicky", spawnOpts(log, "p")...)
	defer func() { <-engine.Poison(pid).Done() }()
	for range 10 {
		engine.Send(pid, boom{})
	}
	engine.Send(pid, ping{id: "after"})
	select {
	case got := <-handled:
		if got != "after" {
			t.Fatalf("handled %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the actor stopped handling messages after panicking")
	}
	if n := strings.Count(logs.String(), "actor panicked"); n != 10 {
		t.Errorf("logged %d panics, want 10", n)
	}
}
