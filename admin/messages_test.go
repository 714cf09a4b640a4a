package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust"
	"github.com/crust-p2p/crust/transport/identity"
)

// TestEventWire pins each event type's line: its fields, zero or not, and no others.
func TestEventWire(t *testing.T) {
	var id identity.NodeID
	id[0] = 1
	ids := id.String()
	for _, tc := range []struct {
		ev   crust.Event
		want string
	}{
		{crust.PeerConnected{ID: id, Kind: "tcp-direct", Addr: netip.MustParseAddrPort("127.0.0.1:5483"), RTT: 1500 * time.Microsecond, Outbound: true},
			`{"type":"connected","id":"` + ids + `","kind":"tcp-direct","addr":"127.0.0.1:5483","rtt_ms":1.5,"outbound":true}`},
		{crust.PeerConnected{ID: id, Kind: "tcp-direct"},
			`{"type":"connected","id":"` + ids + `","kind":"tcp-direct","rtt_ms":0,"outbound":false}`},
		{crust.PeerLost{ID: id, Reason: "peer shut down"},
			`{"type":"lost","id":"` + ids + `","reason":"peer shut down"}`},
		{crust.Message{From: id, Data: []byte("hi")},
			`{"type":"message","from":"` + ids + `","text":"hi","data":"aGk="}`},
		{crust.Message{From: id, Data: []byte{0xff}},
			`{"type":"message","from":"` + ids + `","data":"/w=="}`},
		{crust.Message{From: id},
			`{"type":"message","from":"` + ids + `","text":"","data":""}`},
		{crust.ListenerStarted{Endpoint: crust.Endpoint{Proto: "tcp", Addr: netip.MustParseAddrPort("[::1]:80")}},
			`{"type":"listener_started","endpoint":"tcp://[::1]:80"}`},
		{crust.ListenerFailed{Addr: "0.0.0.0:80", Err: errors.New("permission denied")},
			`{"type":"listener_failed","addr":"0.0.0.0:80","error":"permission denied"}`},
	} {
		e, ok := eventFrom(tc.ev)
		if !ok {
			t.Fatalf("%T not converted", tc.ev)
		}
		got, err := json.Marshal(e)
		if err != nil || string(got) != tc.want {
			t.Errorf("%T:\n got %s, %v\nwant %s", tc.ev, got, err, tc.want)
		}
		var back Event
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("decoding %s: %v", got, err)
		}
		if again, _ := json.Marshal(back); string(again) != tc.want {
			t.Errorf("round trip of %s gave %s", tc.want, again)
		}
	}
	if got, _ := json.Marshal(Event{Type: EventOverflow}); string(got) != `{"type":"overflow"}` {
		t.Errorf("overflow: %s", got)
	}
}

func TestReadLine(t *testing.T) {
	const max = 8
	for _, tc := range []struct {
		in    string
		lines []string
		err   error
	}{
		{"a\nb\n", []string{"a", "b"}, io.EOF},
		{"a\r\n\nlast", []string{"a", "", "last"}, io.EOF},
		{"12345678\n", []string{"12345678"}, io.EOF},
		{"12345678\r\n", []string{"12345678"}, io.EOF},
		{"123456789\n", nil, errLineTooLong},
		{"123456789", nil, errLineTooLong},
		{strings.Repeat("x", 100), nil, errLineTooLong},
	} {
		// The smallest buffer makes lines span several reads.
		r := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var lines []string
		var err error
		for {
			var line []byte
			if line, err = readLine(r, max); err != nil {
				break
			}
			lines = append(lines, string(line))
		}
		if !errors.Is(err, tc.err) || strings.Join(lines, "|") != strings.Join(tc.lines, "|") {
			t.Errorf("%q: lines %q, %v; want %q, %v", tc.in, lines, err, tc.lines, tc.err)
		}
	}
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("{\"op\":\"self\"}\n{\"op\":\"peers\"}\r\n"))
	f.Add(bytes.Repeat([]byte("a"), 40))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 20
		r := bufio.NewReaderSize(bytes.NewReader(in), 16)
		var total int
		for {
			line, err := readLine(r, max)
			if err != nil {
				return
			}
			if len(line) > max || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q: longer than %d or holding a newline", line, max)
			}
			total += len(line)
			if total > len(in) {
				t.Fatalf("read %d bytes from %d", total, len(in))
			}
		}
	})
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	start := time.Unix(1000, 0)
	for i := range logBurst {
		if ok, _ := l.allow(start.Add(time.Duration(i) * time.Millisecond)); !ok {
			t.Fatalf("log %d of the burst held back", i+1)
		}
	}
	for range 5 {
		if ok, _ := l.allow(start.Add(500 * time.Millisecond)); ok {
			t.Fatalf("a log beyond the burst let through")
		}
	}
	ok, unlogged := l.allow(start.Add(time.Second))
	if !ok || unlogged != 5 {
		t.Errorf("after a second: %v, %d unlogged; want true, 5", ok, unlogged)
	}
}
