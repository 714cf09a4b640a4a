package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// addVectorSeeds seeds a fuzz corpus with the pinned frames, the alternative
// encodings and the malformed envelopes; frames says whether to add them with their
// length prefix.
func addVectorSeeds(f *testing.F, frames bool) {
	add := func(env []byte) {
		if frames {
			f.Add(frameOf(env))
		} else {
			f.Add(env)
		}
	}
	var all []byte
	for _, v := range vectors {
		frame := unhex(f, v.hex)
		add(frame[HeaderSize:])
		all = append(all, frame...)
	}
	if frames {
		f.Add(all)
	}
	for _, v := range malformed {
		add(unhex(f, v.env))
	}
	add(unhex(f, "92 02 a2 6869"))
	add(unhex(f, "92 02 c5 0002 6869"))
	add(unhex(f, "92 04 91 07"))
}

// FuzzReader feeds an arbitrary stream to a Reader. It must not panic, must fail
// only with the documented errors, must not allocate much more than a frame per
// frame whatever the length headers claim, and every message it returns must encode
// and decode to itself.
func FuzzReader(f *testing.F) {
	addVectorSeeds(f, true)
	f.Fuzz(func(t *testing.T, stream []byte) {
		const maxFrame = 1 << 10
		r := NewReader(bytes.NewReader(stream), 16, maxFrame)
		for {
			before := heapAllocated()
			m, err := r.Read()
			if got := heapAllocated() - before; got > allocBudget(maxFrame) {
				t.Fatalf("one Read allocated %d bytes, budget %d (err %v)", got, allocBudget(maxFrame), err)
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("Read failed with undocumented error %v", err)
				}
				return
			}
			if d, ok := m.(Data); ok && len(d) > maxFrame {
				t.Fatalf("Data of %d bytes from frames of at most %d", len(d), maxFrame)
			}
			checkReencodes(t, m)
		}
	})
}

// checkReencodes checks that m encodes and decodes back to itself.
func checkReencodes(t *testing.T, m Message) {
	t.Helper()
	env, err := EncodeEnvelope(m)
	if err != nil {
		t.Fatalf("EncodeEnvelope(%#v): %v", m, err)
	}
	again, err := DecodeEnvelope(env)
	if err != nil {
		t.Fatalf("decoding the re-encoded %#v: %v", m, err)
	}
	if !reflect.DeepEqual(again, m) {
		t.Fatalf("re-encoded %#v decodes as %#v", m, again)
	}
}

// FuzzDecodeEnvelope decodes arbitrary envelopes. Errors must be ErrMalformed, a
// Reader given the same bytes as a frame must reach the same result (whether or not it
// takes its Data fast path), and a decoded message must re-encode to itself.
func FuzzDecodeEnvelope(f *testing.F) {
	addVectorSeeds(f, false)
	f.Fuzz(func(t *testing.T, env []byte) {
		m, err := DecodeEnvelope(env)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeEnvelope failed with %v, want ErrMalformed", err)
		}
		rm, rerr := NewReader(bytes.NewReader(frameOf(env)), 16, len(env)).Read()
		switch {
		case (err == nil) != (rerr == nil):
			t.Fatalf("DecodeEnvelope: %#v, %v; Reader: %#v, %v", m, err, rm, rerr)
		case err != nil && !errors.Is(rerr, ErrMalformed):
			t.Fatalf("DecodeEnvelope: %v; Reader: %v, want ErrMalformed", err, rerr)
		case !reflect.DeepEqual(m, rm):
			t.Fatalf("DecodeEnvelope = %#v, Reader = %#v", m, rm)
		}
		if err == nil {
			checkReencodes(t, m)
		}
	})
}

// FuzzHello decodes arbitrary bytes as the body of a Hello envelope. A Hello that
// decodes must re-encode to the same Hello, and its encoding must be stable.
func FuzzHello(f *testing.F) {
	for _, v := range vectors {
		if _, ok := v.msg.(*Hello); ok {
			f.Add(unhex(f, v.hex)[HeaderSize+2:]) // after the length, 92 and 01
		}
	}
	f.Add(unhex(f, "84 a176 01 a26964 c4 02 0102 a26570 91 a1 78 a36f6273 a1 79")) // compact ints
	f.Add(unhex(f, "94 01 c4 02 0102 91 a1 78 a1 79"))                             // struct as array
	f.Add(unhex(f, "82 a176 01 a178 81 a179 90"))                                  // unknown key
	f.Add(unhex(f, "81 a26570 90"))                                                // empty endpoint list
	f.Add(unhex(f, "c0"))
	f.Add(unhex(f, "83 a176 01 a27374 cf 1000000000000000 a27273 82 a173 07 a164 cd 012c")) // Stream, Resume
	f.Add(unhex(f, "81 a27273 c0"))                                                         // Resume nil
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeEnvelope(append([]byte{0x92, byte(TypeHello)}, body...))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEnvelope failed with %v, want ErrMalformed", err)
			}
			return
		}
		h, ok := m.(*Hello)
		if !ok {
			t.Fatalf("a Hello envelope decoded as %T", m)
		}
		env, err := EncodeEnvelope(h)
		if err != nil {
			t.Fatalf("EncodeEnvelope(%#v): %v", h, err)
		}
		again, err := DecodeEnvelope(env)
		if err != nil {
			t.Fatalf("decoding re-encoded %#v: %v", h, err)
		}
		if !reflect.DeepEqual(again, h) {
			t.Fatalf("Hello %#v re-encodes as %#v", h, again)
		}
		env2, err := EncodeEnvelope(again)
		if err != nil || !bytes.Equal(env2, env) {
			t.Fatalf("encoding is not stable: % x then % x (err %v)", env, env2, err)
		}
	})
}
