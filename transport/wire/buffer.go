package wire

import (
	"io"
	"sync"
)

// The frame Reader and Writer buffer like bufio, with one difference: a buffer is
// held only while it holds bytes. It comes from a pool shared by every connection
// and goes back as soon as it is drained (read to the end, or flushed), so an idle
// connection costs a few hundred bytes instead of two full buffers. A node with
// thousands of mostly idle connections is the common case.

// idleRead is how much an idle reader asks for: enough for a small frame or the
// start of a large one, read into the reader itself while it has no buffer.
const idleRead = 512

// pools holds a *sync.Pool of *[]byte per buffer size.
var pools sync.Map

func poolFor(size int) *sync.Pool {
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}})
	return p.(*sync.Pool)
}

// bufReader is a buffered reader that holds a pooled buffer only while bytes wait
// in it. Peek's slice is valid until the next call, as with bufio.Reader.
type bufReader struct {
	rd   io.Reader
	pool *sync.Pool
	size int
	buf  *[]byte // nil while empty
	r, w int     // buffered bytes are (*buf)[r:w]
	err  error
	// busy is set while reads fill more than idleRead: a drained buffer is then
	// kept for the next read, which will most likely fill it again at once.
	busy  bool
	small [idleRead]byte
}

func newBufReader(rd io.Reader, size int) *bufReader {
	size = max(size, 16)
	return &bufReader{rd: rd, pool: poolFor(size), size: size}
}

// Buffered returns how many bytes can be read without reading from rd.
func (b *bufReader) Buffered() int { return b.w - b.r }

// release returns the buffer to the pool once it is drained, unless reads are busy
// (then the next small read gives it back: an idle connection still gets a ping).
func (b *bufReader) release() {
	if b.buf != nil && b.r == b.w && !b.busy {
		b.pool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// fill reads once more from rd. Empty, it reads into the reader's own small array
// and takes a buffer only when bytes arrive.
func (b *bufReader) fill() {
	if b.buf == nil {
		for range 100 { // as bufio: a reader that keeps returning nothing is broken
			n, err := b.rd.Read(b.small[:min(idleRead, b.size)])
			b.busy = n >= min(idleRead, b.size)
			if n > 0 {
				b.buf = b.pool.Get().(*[]byte)
				b.r, b.w = 0, copy(*b.buf, b.small[:n])
			}
			if err != nil {
				b.err = err
			}
			if n > 0 || err != nil {
				return
			}
		}
		b.err = io.ErrNoProgress
		return
	}
	buf := *b.buf
	if b.r > 0 {
		copy(buf, buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	n, err := b.rd.Read(buf[b.w:])
	b.w += n
	b.busy = n >= idleRead
	if err != nil {
		b.err = err
	} else if n == 0 {
		b.err = io.ErrNoProgress
	}
}

// Peek returns the next n bytes without consuming them (n at most the buffer size);
// with fewer available it returns them and the error that cut them short.
func (b *bufReader) Peek(n int) ([]byte, error) {
	for b.w-b.r < n && b.err == nil && n <= b.size {
		b.fill()
	}
	if b.w-b.r < n {
		err := b.err
		if err == nil {
			err = io.ErrShortBuffer
		}
		if b.buf == nil {
			return nil, err
		}
		return (*b.buf)[b.r:b.w], err
	}
	return (*b.buf)[b.r : b.r+n], nil
}

// Discard skips the next n buffered bytes (n at most Buffered).
func (b *bufReader) Discard(n int) {
	b.r += min(n, b.w-b.r)
	b.release()
}

// Read reads into p: from the buffer if it holds bytes, else straight from rd for a
// p at least as large as the buffer, else through the buffer.
func (b *bufReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) >= b.size {
			return b.rd.Read(p)
		}
		b.fill()
		if b.r == b.w {
			return 0, b.err
		}
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += n
	b.release()
	return n, nil
}

// bufWriter is a buffered writer that holds a pooled buffer only while bytes wait
// in it: Flush sends them and returns the buffer.
type bufWriter struct {
	wr   io.Writer
	pool *sync.Pool
	size int
	buf  *[]byte // nil while empty
	n    int     // bytes waiting in *buf
	err  error
}

func newBufWriter(wr io.Writer, size int) *bufWriter {
	size = max(size, 16)
	return &bufWriter{wr: wr, pool: poolFor(size), size: size}
}

// Buffered returns how many bytes wait for Flush.
func (b *bufWriter) Buffered() int { return b.n }

// Write buffers p, sending the buffer whenever it fills; a p at least as large as
// the buffer goes straight through when nothing waits before it.
func (b *bufWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if b.err != nil {
			return total - len(p), b.err
		}
		if b.n == 0 && len(p) >= b.size {
			n, err := b.writeDirect(p)
			return total - len(p) + n, err
		}
		if b.buf == nil {
			b.buf = b.pool.Get().(*[]byte)
		}
		n := copy((*b.buf)[b.n:], p)
		b.n += n
		p = p[n:]
		if b.n == b.size {
			b.send()
		}
	}
	return total, nil
}

// writeThrough writes p to the stream at once, after what is buffered.
func (b *bufWriter) writeThrough(p []byte) error {
	b.send()
	if b.err != nil {
		return b.err
	}
	_, err := b.writeDirect(p)
	return err
}

// writeDirect writes p to the stream; called with nothing buffered.
func (b *bufWriter) writeDirect(p []byte) (int, error) {
	n, err := b.wr.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	b.err = err
	return n, err
}

// send writes the waiting bytes and keeps the buffer.
func (b *bufWriter) send() {
	if b.n == 0 || b.err != nil {
		return
	}
	n, err := b.wr.Write((*b.buf)[:b.n])
	if err == nil && n < b.n {
		err = io.ErrShortWrite
	}
	if err != nil {
		b.err = err
		return
	}
	b.n = 0
}

// Flush writes the waiting bytes and returns the buffer to the pool.
func (b *bufWriter) Flush() error {
	b.send()
	if b.err != nil {
		return b.err
	}
	if b.buf != nil {
		b.pool.Put(b.buf)
		b.buf = nil
	}
	return nil
}
