package admin_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/admin"
)

// The daemon side: serve the admin API beside the Service and publish its events.
func ExampleServer() {
	svc, err := crust.New(crust.Config{})
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	srv := admin.NewServer(svc, slog.Default())
	defer srv.Close() // before svc.Close: it ends the connect requests in progress
	ln, err := admin.Listen("unix:///run/crust/admin.sock")
	if err != nil {
		panic(err) // e.g. admin.ErrInUse: another daemon is running
	}
	go srv.Serve(ln)
	for ev := range svc.Events() {
		srv.Publish(ev)
		// ... the daemon's own handling of ev
	}
}

// The client side: ask a running daemon to connect to a peer and say hello.
func ExampleClient() {
	ctx := context.Background()
	c, err := admin.Dial(ctx, "unix:///run/crust/admin.sock")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	peer, err := c.Connect(ctx, "hu6fqfrg2fyke3pu555rsefoaciu2zcqpavfob54vlc7hx5crmxq@tcp://192.0.2.1:5483")
	if err != nil {
		panic(err) // an *admin.Error lists each step tried
	}
	fmt.Println("connected over", peer.Kind)
	if err := c.Send(ctx, peer.ID, []byte("hello")); err != nil {
		panic(err)
	}
}
