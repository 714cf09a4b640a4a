package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestBufReaderReadsAsWritten reads a stream of frames of every size through readers
// that return one byte, half, or data with the error, and compares.
func TestBufReaderReadsAsWritten(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream bytes.Buffer
	w := NewWriter(&stream, 64)
	var want [][]byte
	for _, n := range []int{0, 1, 7, 15, 16, 17, 100, 511, 512, 513, 4000, 70000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		want = append(want, p)
		if err := w.WriteData(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"plain": func(r io.Reader) io.Reader { return r }, "one-byte": iotest.OneByteReader,
		"half": iotest.HalfReader, "data-err": iotest.DataErrReader,
	} {
		for _, size := range []int{16, 100, 1 << 10, 16 << 10} {
			r := NewReader(wrap(bytes.NewReader(stream.Bytes())), size, 1<<20)
			for i, p := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("%s, size %d: frame %d: %v", name, size, i, err)
				}
				if !bytes.Equal(f.Data, p) {
					t.Fatalf("%s, size %d: frame %d differs (%d bytes, want %d)", name, size, i, len(f.Data), len(p))
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("%s, size %d: after the last frame: %v, want io.EOF", name, size, err)
			}
		}
	}
}

// TestBufReaderIdleHoldsNoBuffer: once the reader has handed out every byte it
// read, it holds no buffer; while bytes wait, it does.
func TestBufReaderIdleHoldsNoBuffer(t *testing.T) {
	var stream bytes.Buffer
	w := NewWriter(&stream, 4096)
	w.WriteData([]byte("one"))
	w.WriteData([]byte("two"))
	w.Flush()
	r := NewReader(&stream, 4096, 1024)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.r.buf == nil || r.Buffered() == 0 {
		t.Fatalf("one frame read, one waiting: buffer %v, %d buffered", r.r.buf != nil, r.Buffered())
	}
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.r.buf != nil || r.Buffered() != 0 {
		t.Fatalf("every frame read: the reader still holds its buffer (%d buffered)", r.Buffered())
	}
}

// TestBufWriterFlushReturnsBuffer: a Writer holds a buffer between Write and Flush
// only, and a write larger than its buffer goes straight through.
func TestBufWriterFlushReturnsBuffer(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, 64)
	if w.w.buf != nil {
		t.Fatal("a new writer holds a buffer")
	}
	w.WriteData([]byte("small"))
	if w.w.buf == nil || out.Len() != 0 || w.Buffered() == 0 {
		t.Fatalf("after a small write: buffer %v, %d bytes out, %d buffered", w.w.buf != nil, out.Len(), w.Buffered())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.w.buf != nil || w.Buffered() != 0 || out.Len() == 0 {
		t.Fatalf("after Flush: buffer %v, %d buffered, %d bytes out", w.w.buf != nil, w.Buffered(), out.Len())
	}
	out.Reset()
	big := bytes.Repeat([]byte{7}, 1000)
	if _, err := w.w.Write(big); err != nil {
		t.Fatal(err)
	}
	if w.w.buf != nil || out.Len() != len(big) {
		t.Fatalf("a write larger than the buffer: buffer %v, %d bytes out, want %d", w.w.buf != nil, out.Len(), len(big))
	}
}

// TestBufWriterErrorSticks: after the stream fails, every Write and Flush reports
// that error and nothing more is sent.
func TestBufWriterErrorSticks(t *testing.T) {
	boom := errors.New("boom")
	fw := &failWriter{after: 100, err: boom}
	w := NewWriter(fw, 64)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = w.WriteData(bytes.Repeat([]byte{1}, 40))
	}
	if !errors.Is(err, boom) {
		t.Fatalf("writes past the failure: %v, want %v", err, boom)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush after the failure: %v, want %v", err, boom)
	}
	if fw.n > fw.after {
		t.Fatalf("%d bytes reached the stream after it failed at %d", fw.n, fw.after)
	}
}

// failWriter accepts after bytes, then fails every write.
type failWriter struct {
	n, after int
	err      error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.after {
		return 0, f.err
	}
	f.n += len(p)
	return len(p), nil
}

// BenchmarkReaderSmallFrames reads 64-byte Data frames, each drained before the
// next arrives: the worst case for a reader that gives its buffer back.
func BenchmarkReaderSmallFrames(b *testing.B) {
	var stream bytes.Buffer
	w := NewWriter(&stream, 64<<10)
	for range 1024 {
		w.WriteData(make([]byte, 64))
	}
	w.Flush()
	data := stream.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 16<<10, 1<<20)
		for {
			if _, err := r.ReadFrame(); err != nil {
				break
			}
		}
	}
}
