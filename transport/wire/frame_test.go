package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// unhex decodes hex written with optional spaces, as the vectors below are.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// frameOf prefixes an envelope with its length.
func frameOf(env []byte) []byte {
	return append([]byte{byte(len(env) >> 24), byte(len(env) >> 16), byte(len(env) >> 8), byte(len(env))}, env...)
}

// writeFrames encodes msgs with a Writer and returns the flushed bytes.
func writeFrames(t testing.TB, bufSize int, msgs ...Message) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, bufSize)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatalf("Write(%#v): %v", m, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return out.Bytes()
}

// testNodeID is a recognisable 32-byte node ID for the vectors.
var testNodeID = bytes.Repeat([]byte{0xab}, 32)

// testHello is the Hello the vectors pin.
var testHello = &Hello{
	Version:      Version,
	NodeID:       testNodeID,
	Endpoints:    []string{"tcp://192.0.2.1:5483", "tcp://[2001:db8::1]:5483"},
	ObservedAddr: "198.51.100.7:40000",
}

// vectors pin the wire format: each message with the exact frame bytes it encodes to,
// length prefix included. A change here is a protocol change.
var vectors = []struct {
	name string
	msg  Message
	hex  string
}{
	{"Data hi", Data("hi"), "00000006 92 02 c4 02 6869"},
	{"Data empty", Data{}, "00000004 92 02 c4 00"},
	{"Ping", Ping{Seq: 7}, "00000006 92 03 81 a173 07"},
	{"Pong", Pong{Seq: 7}, "00000006 92 04 81 a173 07"},
	{"Goodbye duplicate", Goodbye{Reason: ReasonDuplicate}, "0000000f 92 05 81 a172 a9 6475706c6963617465"},
	{"Goodbye dropped", Goodbye{Reason: ReasonDisconnect, Dropped: true}, "00000013 92 05 82 a172 aa 646973636f6e6e656374 a164 c3"},
	{"Activate", Activate{Seq: 3}, "00000006 92 06 81 a173 03"},
	{"Relay error", Relay{To: []byte{1, 2}, Error: "no"}, "0000000e 92 07 82 a174 c4 02 0102 a165 a2 6e6f"},
	{"Ack", Ack{Count: 300}, "00000008 92 08 81 a163 cd 012c"},
	{"Unknown", Unknown{Tag: 9}, "00000003 92 09 c0"},
	{"Hello", testHello, "00000074 92 01 84" +
		" a176 01" +
		" a26964 c420 abababababababababababababababababababababababababababababababab" +
		" a26570 92 b4 7463703a2f2f3139322e302e322e313a35343833 b8 7463703a2f2f5b323030313a6462383a3a315d3a35343833" +
		" a36f6273 b2 3139382e35312e3130302e373a3430303030"},
	{"Hello empty", &Hello{}, "00000013 92 01 84 a176 00 a26964 c0 a26570 c0 a36f6273 a0"},
	{"Hello acks", &Hello{Acks: true}, "00000018 92 01 85 a176 00 a26964 c0 a26570 c0 a36f6273 a0 a3 61636b c3"},
}

func TestVectorsEncode(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			want := unhex(t, v.hex)
			if got := writeFrames(t, 64, v.msg); !bytes.Equal(got, want) {
				t.Errorf("Writer wrote\n% x\nwant\n% x", got, want)
			}
			env, err := EncodeEnvelope(v.msg)
			if err != nil {
				t.Fatalf("EncodeEnvelope: %v", err)
			}
			if !bytes.Equal(env, want[HeaderSize:]) {
				t.Errorf("EncodeEnvelope gave\n% x\nwant\n% x", env, want[HeaderSize:])
			}
		})
	}
}

func TestVectorsDecode(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			frame := unhex(t, v.hex)
			got, err := DecodeEnvelope(frame[HeaderSize:])
			if err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			if !reflect.DeepEqual(got, v.msg) {
				t.Errorf("DecodeEnvelope = %#v, want %#v", got, v.msg)
			}
			r := NewReader(bytes.NewReader(frame), 16, 1024)
			got, err = r.Read()
			if err != nil {
				t.Fatalf("Reader.Read: %v", err)
			}
			if !reflect.DeepEqual(got, v.msg) {
				t.Errorf("Reader.Read = %#v, want %#v", got, v.msg)
			}
			if _, err := r.Read(); err != io.EOF {
				t.Errorf("Read after the only frame: %v, want io.EOF", err)
			}
		})
	}
}

// TestDataSizes pins where Data switches from bin8 to bin16 to bin32.
func TestDataSizes(t *testing.T) {
	tests := []struct {
		size   int
		prefix string // length prefix and envelope up to the payload
	}{
		{0, "00000004 92 02 c4 00"},
		{255, "00000103 92 02 c4 ff"},
		{256, "00000105 92 02 c5 0100"},
		{65535, "00010004 92 02 c5 ffff"},
		{65536, "00010007 92 02 c6 00010000"},
		{1 << 20, "00100007 92 02 c6 00100000"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			payload := bytes.Repeat([]byte{'x'}, tt.size)
			want := append(unhex(t, tt.prefix), payload...)
			got := writeFrames(t, 4096, Data(payload))
			if !bytes.Equal(got, want) {
				t.Fatalf("frame starts % x, want % x (lengths %d, %d)", got[:min(len(got), 12)], want[:min(len(want), 12)], len(got), len(want))
			}
			if app := AppendData([]byte("x"), payload); !bytes.Equal(app[1:], want) || DataFrameSize(tt.size) != len(want) {
				t.Fatalf("AppendData differs from Writer, or DataFrameSize %d != %d", DataFrameSize(tt.size), len(want))
			}
			env, err := EncodeEnvelope(Data(payload))
			if err != nil || !bytes.Equal(env, want[HeaderSize:]) {
				t.Fatalf("EncodeEnvelope differs from Writer (err %v)", err)
			}
			m, err := NewReader(bytes.NewReader(want), 4096, 2<<20).Read()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if d, ok := m.(Data); !ok || !bytes.Equal(d, payload) {
				t.Fatalf("Read gave %T of %d bytes, want Data of %d", m, len(d), tt.size)
			}
		})
	}
}

// TestDecodeOtherEncodings checks that DecodeEnvelope accepts any valid msgpack
// encoding of a message, not only the one EncodeEnvelope produces.
func TestDecodeOtherEncodings(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want Message
	}{
		{"Data as str", "92 02 a2 6869", Data("hi")},
		{"Data as bin16", "92 02 c5 0002 6869", Data("hi")},
		{"Data as bin32", "92 02 c6 00000002 6869", Data("hi")},
		{"Data nil", "92 02 c0", Data{}},
		{"array16 envelope", "dc 0002 02 c4 01 78", Data("x")},
		{"type as uint16", "92 cd0003 81 a173 07", Ping{Seq: 7}},
		{"wide ints", "92 cc03 81 a173 cf0000000000000007", Ping{Seq: 7}},
		{"struct as array", "92 04 91 07", Pong{Seq: 7}},
		{"unknown field ignored", "92 05 82 a178 93 01 02 03 a172 a2 6869", Goodbye{Reason: "hi"}},
		{"empty body", "92 05 80", Goodbye{}},
		{"Activate nil body", "92 06 c0", Activate{}},
		{"unknown type with body", "92 63 82 a178 01 a179 c4 02 0102", Unknown{Tag: 99}},
		{"unknown type 255", "92 ccff c0", Unknown{Tag: 255}},
		{"Hello compact", "92 01 84 a176 01 a26964 c4 02 0102 a26570 91 a1 78 a36f6273 a1 79",
			&Hello{Version: 1, NodeID: []byte{1, 2}, Endpoints: []string{"x"}, ObservedAddr: "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := unhex(t, tt.env)
			got, err := DecodeEnvelope(env)
			if err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeEnvelope = %#v, want %#v", got, tt.want)
			}
			// The Reader takes its Data fast path for some of these; it must agree.
			got, err = NewReader(bytes.NewReader(frameOf(env)), 16, 1024).Read()
			if err != nil {
				t.Fatalf("Reader.Read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Reader.Read = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// malformed are envelopes that both DecodeEnvelope and Reader must refuse with
// ErrMalformed.
var malformed = []struct {
	name string
	env  string
}{
	{"empty", ""},
	{"not an array", "02"},
	{"nil envelope", "c0"},
	{"map envelope", "81 02 c0"},
	{"1-array", "91 02"},
	{"3-array", "93 02 c4 00 c0"},
	{"no body", "92 02"},
	{"no type", "92"},
	{"type is a string", "92 a1 78 c0"},
	{"type is negative", "92 ff c0"},
	{"type is a float", "92 ca 40000000 c0"},
	{"type over 255", "92 cd 0102 c4 00"}, // 258 would be Data if truncated to a byte
	{"trailing byte", "92 02 c4 00 00"},
	{"trailing byte after Ping", "92 03 81 a173 07 c0"},
	{"Data bin8 longer than frame", "92 02 c4 05 6869"},
	{"Data bin8 shorter than frame", "92 02 c4 01 6869"},
	{"Data bin16 longer than frame", "92 02 c5 0100 6869"},
	{"Data bin32 longer than frame", "92 02 c6 ffffffff 6869"},
	{"Data bin32 shorter than frame", "92 02 c6 00000001 6869"},
	{"Data str32 claims 1 MiB", "92 02 db 00100000 6869"},
	{"Data is an int", "92 02 07"},
	{"Data is an array", "92 02 91 c4 00"},
	{"Ping is a string", "92 03 a1 78"},
	{"Ping seq is a string", "92 03 81 a173 a1 78"},
	{"Goodbye reason is a map", "92 05 81 a172 80"},
	{"Hello is an int", "92 01 07"},
	{"Hello endpoints are ints", "92 01 81 a26570 91 07"},
	{"Hello endpoints claim 4G entries", "92 01 81 a26570 dd ffffffff a0"},
	{"Hello id claims 1 MiB", "92 01 81 a26964 c6 00100000 00"},
	{"Hello map claims 4G pairs", "92 01 df ffffffff a176 01"},
	{"unknown type, invalid byte", "92 07 c1"},
	{"unknown type, truncated str", "92 07 a5 6869"},
	{"unknown type, truncated ext", "92 07 d8 01 0203"},
	{"unknown type, nested too deep", "92 07" + strings.Repeat(" 91", maxNesting+1) + " c0"},
}

func TestDecodeMalformed(t *testing.T) {
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			env := unhex(t, tt.env)
			m, err := DecodeEnvelope(env)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeEnvelope = %#v, %v; want ErrMalformed", m, err)
			}
			m, err = NewReader(bytes.NewReader(frameOf(env)), 16, 1024).Read()
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Reader.Read = %#v, %v; want ErrMalformed", m, err)
			}
		})
	}
}

func TestDecodeNestingLimit(t *testing.T) {
	nested := func(depth int) []byte {
		return append(append([]byte{0x92, 0x09}, bytes.Repeat([]byte{0x91}, depth)...), 0xc0)
	}
	if _, err := DecodeEnvelope(nested(maxNesting)); err != nil {
		t.Errorf("%d nested arrays: %v, want accepted", maxNesting, err)
	}
	if _, err := DecodeEnvelope(nested(maxNesting + 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d nested arrays: %v, want ErrMalformed", maxNesting+1, err)
	}
	// Before the nesting limit, this frame overflowed the stack of msgpack's
	// recursive Skip and killed the process.
	if _, err := DecodeEnvelope(nested(DefaultMaxFrameSize - 3)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a frame of nested arrays at the maximum frame size: %v, want ErrMalformed", err)
	}
}

// heapAllocated returns the bytes allocated on the heap so far.
func heapAllocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// allocBudget is how much decoding one frame of maxFrame bytes may allocate: the
// frame buffer, a Data payload, and what msgpack makes of the body, which for a
// Hello's string list is 16 bytes of string header per byte of input.
func allocBudget(maxFrame int) uint64 { return 32*uint64(maxFrame) + 64<<10 }

// TestDecodeLyingLengths checks that a length header that claims more than the frame
// holds costs no more memory than the frame: msgpack preallocates what a header
// claims, up to 1 MiB of bytes or a million strings.
func TestDecodeLyingLengths(t *testing.T) {
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			env := unhex(t, tt.env)
			before := heapAllocated()
			_, err := NewReader(bytes.NewReader(frameOf(env)), 16, 1024).Read()
			if got, budget := heapAllocated()-before, allocBudget(len(env)); got > budget {
				t.Errorf("reading a %d-byte frame allocated %d bytes, budget %d (err %v)", len(env), got, budget, err)
			}
		})
	}
}

func TestReaderRoundTrip(t *testing.T) {
	msgs := []Message{
		testHello,
		&Hello{Version: Version, NodeID: bytes.Repeat([]byte{5}, 32), Acks: true, Stream: 1 << 60, Resume: &Resume{Stream: 7, Delivered: 1 << 33}},
		Data("first"),
		Ping{Seq: 1},
		Data(bytes.Repeat([]byte{1}, 300)),
		Pong{Seq: 1},
		Data(bytes.Repeat([]byte{2}, 70000)),
		Activate{Seq: 1 << 40},
		Activate{Seq: 2, After: 1, Streams: &Streams{Yours: 9, YoursFrom: 1 << 35, YoursResumed: true, Mine: 1 << 63, MineFrom: 4}},
		Relay{To: bytes.Repeat([]byte{3}, 32), From: bytes.Repeat([]byte{4}, 32), Body: []byte("punch")},
		Data{},
		Unknown{Tag: 200},
		Goodbye{Reason: ReasonShutdown},
	}
	// 16 bytes is the smallest bufio buffer: every frame crosses buffer boundaries.
	for _, bufSize := range []int{16, 4096, 1 << 20} {
		t.Run(fmt.Sprint(bufSize), func(t *testing.T) {
			stream := writeFrames(t, bufSize, msgs...)
			r := NewReader(bytes.NewReader(stream), bufSize, 1<<20)
			for i, want := range msgs {
				got, err := r.Read()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("message %d = %#v, want %#v", i, got, want)
				}
			}
			if m, err := r.Read(); err != io.EOF {
				t.Fatalf("after the last frame: %#v, %v; want io.EOF", m, err)
			}
		})
	}
}

// TestReaderTruncated cuts a stream at every byte: a cut between frames is a clean
// io.EOF after the complete frames, a cut inside one is io.ErrUnexpectedEOF.
func TestReaderTruncated(t *testing.T) {
	msgs := []Message{Data("hello"), testHello, Data(bytes.Repeat([]byte{7}, 300)), Ping{Seq: 9}}
	stream := writeFrames(t, 64, msgs...)
	var ends []int // offset just past each frame
	end := 0
	for _, m := range msgs {
		end += len(writeFrames(t, 64, m))
		ends = append(ends, end)
	}
	for cut := 0; cut < len(stream); cut++ {
		r := NewReader(bytes.NewReader(stream[:cut]), 16, 1024)
		complete, clean := 0, cut == 0
		for _, end := range ends {
			if end <= cut {
				complete++
				clean = end == cut
			}
		}
		for i := range complete {
			if _, err := r.Read(); err != nil {
				t.Fatalf("cut at %d: frame %d: %v", cut, i, err)
			}
		}
		want := io.ErrUnexpectedEOF
		if clean {
			want = io.EOF
		}
		if m, err := r.Read(); err != want {
			t.Fatalf("cut at %d after %d frames: %#v, %v; want %v", cut, complete, m, err, want)
		}
	}
}

func TestReaderFrameSize(t *testing.T) {
	const maxFrame = 100
	exact := Data(bytes.Repeat([]byte{'x'}, maxFrame-4)) // bin8: 4 bytes of envelope prefix
	tests := []struct {
		name    string
		stream  []byte
		wantErr error
	}{
		{"exactly the maximum", writeFrames(t, 64, exact), nil},
		{"one over", writeFrames(t, 64, append(exact, 'x')), ErrFrameTooLarge},
		{"header only, over", unhex(t, "00000065"), ErrFrameTooLarge},
		// Negative as a 32-bit int: must not slip past the check on 32-bit platforms.
		{"2 GiB", unhex(t, "80000000"), ErrFrameTooLarge},
		{"4 GiB", unhex(t, "ffffffff"), ErrFrameTooLarge},
		{"zero length", unhex(t, "00000000"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.stream), 16, maxFrame)
			m, err := r.Read()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Read = %T, %v; want %v", m, err, tt.wantErr)
			}
		})
	}
}

func TestReaderStreamError(t *testing.T) {
	boom := errors.New("boom")
	// The stream breaks in the middle of a frame's body.
	r := NewReader(io.MultiReader(bytes.NewReader(unhex(t, "00000010 92 cc05")), iotest.ErrReader(boom)), 16, 1024)
	if _, err := r.Read(); !errors.Is(err, boom) {
		t.Fatalf("Read = %v, want the stream's error", err)
	}
	// And before a frame's header is complete.
	r = NewReader(io.MultiReader(bytes.NewReader([]byte{0, 0}), iotest.ErrReader(boom)), 16, 1024)
	if _, err := r.Read(); !errors.Is(err, boom) {
		t.Fatalf("Read = %v, want the stream's error", err)
	}
}

// TestReaderOwnership checks that decoded messages do not share memory with the
// Reader's buffer, which the next frame overwrites.
func TestReaderOwnership(t *testing.T) {
	stream := writeFrames(t, 64,
		Data("first data"), Data("other data"),
		testHello, &Hello{Version: 2, NodeID: bytes.Repeat([]byte{0xcd}, 32), Endpoints: []string{"tcp://203.0.113.9:1"}, ObservedAddr: "203.0.113.1:2"},
		// Non-canonical Data, so it goes through DecodeEnvelope and not the fast path.
		Unknown{Tag: 99},
	)
	stream = append(stream, frameOf(unhex(t, "92 02 a4 61626364"))...)
	stream = append(stream, frameOf(unhex(t, "92 02 a4 77787978"))...)
	r := NewReader(bytes.NewReader(stream), 16, 1024)
	read := func() Message {
		t.Helper()
		m, err := r.Read()
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return m
	}
	d1 := read().(Data)
	read()
	if string(d1) != "first data" {
		t.Errorf("first Data changed to %q after the next Read", d1)
	}
	h1 := read().(*Hello)
	read()
	if !reflect.DeepEqual(h1, testHello) {
		t.Errorf("first Hello changed to %#v after the next Read", h1)
	}
	read()
	d2 := read().(Data)
	read()
	if string(d2) != "abcd" {
		t.Errorf("str-encoded Data changed to %q after the next Read", d2)
	}
}

// ReadFrameLent lends payloads that fit in the buffer and copies larger ones; a lent
// payload stays intact until the next call, even when it was the last buffered frame
// (the drained buffer must not go back to the shared pool while lent), and Buffered
// does not count it.
func TestReaderLends(t *testing.T) {
	const bufSize = 64
	var msgs []Message
	for i, size := range []int{1, 20, 0, bufSize - 4 - 4, bufSize, 300, 7} {
		msgs = append(msgs, Data(bytes.Repeat([]byte{byte('a' + i)}, size)))
	}
	msgs = append(msgs, Ping{Seq: 5}, Data("end"))
	stream := writeFrames(t, 1024, msgs...)
	// One byte per read, so the buffer drains at the end of every frame.
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), bufSize, 1024)
	for i, m := range msgs {
		f, err := r.ReadFrameLent()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want, ok := m.(Data); ok {
			if f.Msg != nil || !bytes.Equal(f.Data, want) {
				t.Fatalf("frame %d: %T %q, want %d bytes of Data", i, f.Msg, f.Data, len(want))
			}
			if r.Buffered() != 0 {
				t.Fatalf("frame %d: Buffered %d with only the lent frame in the buffer", i, r.Buffered())
			}
			for range 4 { // a pooled buffer handed out now would be scribbled on
				bp := poolFor(bufSize).Get().(*[]byte)
				for j := range *bp {
					(*bp)[j] = 'X'
				}
				defer poolFor(bufSize).Put(bp)
			}
			if !bytes.Equal(f.Data, want) {
				t.Fatalf("frame %d changed before the next call: %q", i, f.Data)
			}
			continue
		}
		if !reflect.DeepEqual(f.Msg, m) {
			t.Fatalf("frame %d: %#v, want %#v", i, f.Msg, m)
		}
	}
	if _, err := r.ReadFrameLent(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	// A frame cut short while lending is ErrUnexpectedEOF, as with ReadFrame.
	cut := writeFrames(t, 64, Data("truncated"))
	r = NewReader(bytes.NewReader(cut[:len(cut)-2]), bufSize, 1024)
	if _, err := r.ReadFrameLent(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v, want ErrUnexpectedEOF", err)
	}
}

// ReadRun hands buffered Data frames to its callback and stops at the first other
// frame, when nothing more is buffered, or when the callback says so.
func TestReaderRun(t *testing.T) {
	for _, lend := range []bool{false, true} {
		t.Run(fmt.Sprint("lend=", lend), func(t *testing.T) {
			stream := writeFrames(t, 4096, Data("a"), Data("b"), Data("c"), Ping{Seq: 1}, Data("d"), Data("e"))
			// The first read takes in "a" to "c" and the Ping only: "d" and "e" come in
			// a second read.
			split := len(writeFrames(t, 64, Data("a"), Data("b"), Data("c"), Ping{Seq: 1}))
			r := NewReader(io.MultiReader(bytes.NewReader(stream[:split]), bytes.NewReader(stream[split:])), 4096, 1024)
			var got []string
			keep := func(max int) func([]byte) bool {
				return func(d []byte) bool {
					got = append(got, string(d)) // copied: a lent d changes later
					return len(got) < max
				}
			}
			f, n, err := r.ReadRun(lend, keep(2)) // the callback stops after "b"
			if err != nil || f.Msg != nil || n != 2 {
				t.Fatalf("first run: %v %v n=%d", f.Msg, err, n)
			}
			f, n, err = r.ReadRun(lend, keep(10)) // "c", then the Ping ends the run
			if err != nil || n != 1 || !reflect.DeepEqual(f.Msg, Ping{Seq: 1}) {
				t.Fatalf("second run: %#v %v n=%d, want the Ping after 1", f.Msg, err, n)
			}
			f, n, err = r.ReadRun(lend, keep(10)) // "d" and "e": the rest of the stream
			if err != nil || f.Msg != nil || n != 2 {
				t.Fatalf("third run: %v %v n=%d", f.Msg, err, n)
			}
			if want := []string{"a", "b", "c", "d", "e"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("payloads %q, want %q", got, want)
			}
			if _, _, err := r.ReadRun(lend, keep(10)); err != io.EOF {
				t.Fatalf("at the end: %v, want EOF", err)
			}
		})
	}
}

func TestWriterBuffers(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 4096)
	if err := w.Write(Ping{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Data("payload")); err != nil {
		t.Fatal(err)
	}
	want := writeFrames(t, 64, Ping{Seq: 1}, Data("payload"))
	if out.Len() != 0 || w.Buffered() != len(want) {
		t.Fatalf("before Flush: %d bytes written, %d buffered; want 0 and %d", out.Len(), w.Buffered(), len(want))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) || w.Buffered() != 0 {
		t.Fatalf("after Flush: wrote % x with %d buffered; want % x and 0", out.Bytes(), w.Buffered(), want)
	}
}

// WriteFrames keeps the order with frames written before it: buffered ones go first.
func TestWriterFrames(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 4096)
	long := AppendData(nil, make([]byte, writeThroughMin))
	if err := w.WriteFrames(long); err != nil {
		t.Fatal(err)
	}
	if out.Len() != len(long) || w.Buffered() != 0 {
		t.Fatalf("a long run into an empty buffer: %d bytes written, %d buffered; want %d written through", out.Len(), w.Buffered(), len(long))
	}
	out.Reset()
	frames := AppendData(AppendData(nil, []byte("a")), []byte("b"))
	if err := w.Write(Ping{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrames(frames); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := writeFrames(t, 64, Ping{Seq: 1}, Data("a"), Data("b")); !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("after a buffered Ping: % x, want % x", out.Bytes(), want)
	}
	if err := NewWriter(failingWriter{errors.New("boom")}, 64).WriteFrames(long); err == nil {
		t.Fatal("WriteFrames to a broken stream: no error")
	}
}

func TestWriterError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(failingWriter{boom}, 16)
	// A payload larger than the buffer is written through, so Write sees the error.
	if err := w.Write(Data(bytes.Repeat([]byte{1}, 100))); !errors.Is(err, boom) {
		t.Fatalf("Write through a broken stream: %v, want its error", err)
	}
	w = NewWriter(failingWriter{boom}, 4096)
	if err := w.Write(Ping{Seq: 1}); err != nil {
		t.Fatalf("buffered Write: %v", err)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush to a broken stream: %v, want its error", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
