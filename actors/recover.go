package actors

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/anthdm/hollywood/actor"
)

// recoverPanics is middleware every crust actor runs under. hollywood v1.0.5 restarts
// a panicking actor and, past MaxRestarts, crashes the whole process (its cleanup calls
// a nil cancel func). A panic in one actor's Receive must never take the node down:
// it is logged with its stack, the message is dropped, and the actor goes on.
func recoverPanics(log *slog.Logger) actor.MiddlewareFunc {
	return func(next actor.ReceiveFunc) actor.ReceiveFunc {
		return func(c *actor.Context) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("actor panicked; message dropped",
						"actor", c.PID().String(), "message", fmt.Sprintf("%T", c.Message()),
						"panic", r, "stack", string(debug.Stack()))
				}
			}()
			next(c)
		}
	}
}

// inboxSize is an actor's first mailbox capacity. The mailbox grows (doubling) when
// messages queue; hollywood's default of 1,024 slots costs 24 KiB per actor, and a node
// has one actor per peer.
const inboxSize = 32

// spawnOpts returns the options every crust actor is spawned with.
func spawnOpts(log *slog.Logger, id string) []actor.OptFunc {
	return []actor.OptFunc{actor.WithMiddleware(recoverPanics(log)), actor.WithID(id), actor.WithInboxSize(inboxSize)}
}
