package main

import (
	"fmt"
	"time"

	"github.com/crust-p2p/crust"
)

// maxSize is the largest -size: crust's default limit on a message.
const maxSize = 16<<20 - 16

// Where to send, as named by -to.
const (
	toAll   = "all"
	toFirst = "first"
)

// options are crust-msgrate's settings; parseArgs fills them from flags.
type options struct {
	// connect are the contacts (text form) to join at start.
	connect []string
	// rate is the messages per second sent to each peer, unless max.
	rate int
	// max sends as fast as the send queue takes messages, ignoring rate.
	max bool
	// size is the bytes per message, at least headerSize.
	size int
	// duration is how long to send, from when peers peers are connected; 0 sends
	// until the context ends (Ctrl-C).
	duration time.Duration
	// to is toAll or toFirst.
	to string
	// peers is how many peers must be connected before sending starts; 0 starts at
	// once (and sends to peers as they connect).
	peers int
	// protocols are passed to crust.Config.Protocols: "tcp", "quic".
	protocols []string
	// listen are the listen addresses, passed to crust.Config.ListenAddrs.
	listen []string
	// expectNoLoss makes run return errLoss if any message was lost.
	expectNoLoss bool
	// logLevel is off, error, warn, info or debug.
	logLevel string
	// terminal says standard output is a terminal: the live line is rewritten in
	// place rather than printed once a second on a line of its own.
	terminal bool
	// quiet is how long nothing may arrive, after sending ends, before the summary is
	// made.
	quiet time.Duration
	// maxGrace bounds that wait: a peer still sending does not hold us for longer.
	maxGrace time.Duration
}

// defaultOptions returns the flags' defaults.
func defaultOptions() options {
	return options{
		rate:      1000,
		size:      64,
		duration:  10 * time.Second,
		to:        toAll,
		peers:     1,
		protocols: []string{"tcp", "quic"},
		listen:    []string{"127.0.0.1:0"},
		logLevel:  "warn",
		quiet:     500 * time.Millisecond,
		maxGrace:  2 * time.Second,
	}
}

// validate checks the values that flags can get wrong; each error names the flag.
func (o options) validate() error {
	switch {
	case !o.max && o.rate <= 0:
		return fmt.Errorf("-rate %d: want 1 or more messages per second (or -max)", o.rate)
	case o.size < headerSize || o.size > maxSize:
		return fmt.Errorf("-size %d: want %d (a sequence number and a send time) to %d bytes", o.size, headerSize, maxSize)
	case o.duration < 0:
		return fmt.Errorf("-duration %v: want 0 (until Ctrl-C) or more", o.duration)
	case o.to != toAll && o.to != toFirst:
		return fmt.Errorf("-to %q: want all or first", o.to)
	case o.peers < 0:
		return fmt.Errorf("-peers %d: want 0 or more", o.peers)
	case len(o.protocols) == 0:
		return fmt.Errorf("-protocols: want tcp, quic or both")
	case len(o.listen) == 0:
		return fmt.Errorf("-listen: want at least one ip:port")
	}
	for _, p := range o.protocols {
		if p != "tcp" && p != "quic" {
			return fmt.Errorf("-protocols: %q: want tcp, quic or both, comma-separated", p)
		}
	}
	_, err := o.contacts()
	return err
}

// contacts parses the -connect contacts.
func (o options) contacts() ([]crust.Contact, error) {
	var out []crust.Contact
	for _, text := range o.connect {
		c, err := crust.ParseContact(text)
		if err != nil {
			return nil, fmt.Errorf("-connect: %w (pass the text after \"contact: \" that the other instance printed)", err)
		}
		out = append(out, c)
	}
	return out, nil
}
