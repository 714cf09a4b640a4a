package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// HeaderSize is the size of the frame length prefix.
const HeaderSize = 4

// DefaultMaxFrameSize is the default limit on one frame's envelope: 16 MiB.
const DefaultMaxFrameSize = 16 << 20

// msgpack bytes used by the fast paths.
const (
	mpFixArray2 = 0x92
	mpNil       = 0xc0
	mpBin8      = 0xc4
	mpBin16     = 0xc5
	mpBin32     = 0xc6
)

// dataPrefix returns the envelope bytes before the payload of a Data message of n bytes:
// [fixarray(2), fixint(2), bin header].
func dataPrefix(buf *[8]byte, n int) []byte {
	buf[0], buf[1] = mpFixArray2, byte(TypeData)
	switch {
	case n <= 0xff:
		buf[2], buf[3] = mpBin8, byte(n)
		return buf[:4]
	case n <= 0xffff:
		buf[2] = mpBin16
		binary.BigEndian.PutUint16(buf[3:], uint16(n))
		return buf[:5]
	default:
		buf[2] = mpBin32
		binary.BigEndian.PutUint32(buf[3:], uint32(n))
		return buf[:7]
	}
}

// EncodeEnvelope returns the msgpack envelope of m, without the length prefix.
func EncodeEnvelope(m Message) ([]byte, error) {
	if d, ok := m.(Data); ok {
		var p [8]byte
		return append(dataPrefix(&p, len(d)), d...), nil
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	// Integers in their shortest form: the type tag is one byte, as in Data's fast
	// path, and a small Seq costs one byte, not nine.
	enc.UseCompactInts(true)
	if err := enc.EncodeArrayLen(2); err != nil {
		return nil, err
	}
	if err := enc.EncodeUint(uint64(m.Type())); err != nil {
		return nil, err
	}
	var err error
	switch m := m.(type) {
	case Unknown:
		err = enc.EncodeNil()
	default:
		err = enc.Encode(m)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", m, err)
	}
	return buf.Bytes(), nil
}

// DecodeEnvelope decodes one envelope (a frame without its length prefix). It accepts
// any valid msgpack encoding of the envelope, not only the one Encode produces, as long
// as the body nests no deeper than 32 levels.
func DecodeEnvelope(b []byte) (Message, error) {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 2 {
		return nil, fmt.Errorf("%w: envelope is not a 2-element array", ErrMalformed)
	}
	// Decoded wide so that 258 is not taken for 2 (DecodeUint8 truncates).
	tag, err := dec.DecodeUint64()
	if err != nil {
		return nil, fmt.Errorf("%w: message type: %v", ErrMalformed, err)
	}
	if tag > math.MaxUint8 {
		return nil, fmt.Errorf("%w: message type %d out of range", ErrMalformed, tag)
	}
	// msgpack trusts the lengths it reads (it preallocates up to 1 MiB or a million
	// elements for what a header claims) and recurses once per nesting level, so a
	// short frame could cost megabytes and a deep one overflow the stack. Checking the
	// body first bounds both by the frame itself.
	body := b[len(b)-r.Len():]
	size, err := valueSize(body)
	if err != nil {
		return nil, fmt.Errorf("%w: type %d body: %v", ErrMalformed, tag, err)
	}
	if size != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the envelope", ErrMalformed, len(body)-size)
	}
	var m Message
	switch Type(tag) {
	case TypeHello:
		h := new(Hello)
		err = dec.Decode(h)
		m = h
	case TypeData:
		var d []byte
		d, err = dec.DecodeBytes()
		if d == nil && err == nil {
			d = []byte{}
		}
		m = Data(d)
	case TypePing:
		var p Ping
		err = dec.Decode(&p)
		m = p
	case TypePong:
		var p Pong
		err = dec.Decode(&p)
		m = p
	case TypeGoodbye:
		var g Goodbye
		err = dec.Decode(&g)
		m = g
	case TypeActivate:
		var a Activate
		err = dec.Decode(&a)
		m = a
	case TypeAck:
		var a Ack
		err = dec.Decode(&a)
		m = a
	case TypeRelay:
		var r Relay
		err = dec.Decode(&r)
		// Empty is absent (omitempty), so that a Relay decodes as it re-encodes.
		if len(r.From) == 0 {
			r.From = nil
		}
		if len(r.Body) == 0 {
			r.Body = nil
		}
		if err == nil && len(r.Body) > MaxRelayBody {
			err = fmt.Errorf("relay body of %d bytes, at most %d", len(r.Body), MaxRelayBody)
		}
		m = r
	default:
		err = dec.Skip()
		m = Unknown{Tag: Type(tag)}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: type %d body: %v", ErrMalformed, tag, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the envelope", ErrMalformed, r.Len())
	}
	return m, nil
}

// Writer writes frames to a buffered stream. Write buffers; Flush sends. It is not safe
// for concurrent use.
type Writer struct {
	w      *bufWriter
	header [HeaderSize + 8]byte
}

// NewWriter returns a Writer that buffers up to size bytes before writing to w. The
// buffer is taken from a shared pool at the first Write and given back by Flush.
func NewWriter(w io.Writer, size int) *Writer {
	return &Writer{w: newBufWriter(w, size)}
}

// Write appends one frame to the buffer (and writes through when the buffer fills).
func (fw *Writer) Write(m Message) error {
	if d, ok := m.(Data); ok {
		return fw.WriteData(d)
	}
	env, err := EncodeEnvelope(m)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(fw.header[:HeaderSize], uint32(len(env)))
	if _, err := fw.w.Write(fw.header[:HeaderSize]); err != nil {
		return err
	}
	_, err = fw.w.Write(env)
	return err
}

// WriteData appends a Data frame carrying d. It is the hot path: the envelope prefix
// is built in place (no Message boxing) and the payload is copied once into the
// buffer, or written straight through when it is large.
func (fw *Writer) WriteData(d []byte) error {
	var p [8]byte
	prefix := dataPrefix(&p, len(d))
	binary.BigEndian.PutUint32(fw.header[:HeaderSize], uint32(len(prefix)+len(d)))
	n := copy(fw.header[HeaderSize:], prefix)
	if _, err := fw.w.Write(fw.header[:HeaderSize+n]); err != nil {
		return err
	}
	_, err := fw.w.Write(d)
	return err
}

// writeThroughMin is the smallest run of frames WriteFrames sends without buffering:
// a full TLS record. Smaller runs are gathered, so that a writer popping a few
// messages at a time still sends full records.
const writeThroughMin = 16 << 10

// WriteFrames writes frames already encoded by AppendData, back to back. A long run
// goes straight to the stream while nothing is buffered, saving a copy; frames is
// not kept after the call returns.
func (fw *Writer) WriteFrames(frames []byte) error {
	if fw.w.Buffered() == 0 && len(frames) >= writeThroughMin {
		return fw.w.writeThrough(frames)
	}
	_, err := fw.w.Write(frames)
	return err
}

// DataFrameSize is the encoded size of a Data frame carrying n bytes, length prefix
// included.
func DataFrameSize(n int) int {
	var p [8]byte
	return HeaderSize + len(dataPrefix(&p, n)) + n
}

// AppendData appends the Data frame carrying d (length prefix, envelope, payload) to
// b, as WriteData would write it, and returns the extended slice.
func AppendData(b, d []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, DataFrameSize(len(d)))...)
	PutData(b[n:], d)
	return b
}

// PutData writes the Data frame carrying d at the start of dst, which must have room
// for DataFrameSize(len(d)) bytes, and returns the frame's size.
func PutData(dst, d []byte) int {
	var p [8]byte
	prefix := dataPrefix(&p, len(d))
	binary.BigEndian.PutUint32(dst, uint32(len(prefix)+len(d)))
	n := HeaderSize + copy(dst[HeaderSize:], prefix)
	return n + copy(dst[n:], d)
}

// Flush writes buffered frames to the underlying stream.
func (fw *Writer) Flush() error { return fw.w.Flush() }

// Buffered returns the number of bytes waiting for Flush.
func (fw *Writer) Buffered() int { return fw.w.Buffered() }

// Frame is one decoded frame: a Data payload, or another message. Keeping Data out of
// the Message interface saves an allocation per message on the hot path.
type Frame struct {
	// Msg is the message, or nil for a Data frame.
	Msg Message
	// Data is the payload of a Data frame, owned by the caller.
	Data []byte
}

// keptBody is the largest control frame body read into a pooled buffer; larger ones
// (rare) get their own.
const keptBody = 1 << 10

// Reader reads frames from a buffered stream. It is not safe for concurrent use.
type Reader struct {
	r    *bufReader
	max  int
	lent int // bytes of a lent payload's frame, still in the buffer until the next call
}

// NewReader returns a Reader that buffers up to size bytes from r and refuses frames
// whose envelope is longer than maxFrame bytes. While nothing is buffered (an idle
// connection) it holds no buffer: one is taken from a shared pool when bytes arrive.
func NewReader(r io.Reader, size, maxFrame int) *Reader {
	return &Reader{r: newBufReader(r, size), max: maxFrame}
}

// Buffered returns the number of bytes already received that Read can consume
// without blocking.
func (fr *Reader) Buffered() int { return fr.r.Buffered() - fr.lent }

// SetMaxFrameSize changes the limit on the envelope size of the next frames, e.g. a
// small one for the Hello before the connection is trusted.
func (fr *Reader) SetMaxFrameSize(n int) { fr.max = n }

// Read reads one frame as a Message (a Data frame as Data). A Data payload is a fresh
// slice owned by the caller. Errors are those of ReadFrame.
func (fr *Reader) Read() (Message, error) {
	f, err := fr.ReadFrame()
	if err != nil || f.Msg != nil {
		return f.Msg, err
	}
	return Data(f.Data), nil
}

// ReadFrame reads one frame. A Data payload is a fresh slice owned by the caller.
// Errors are io.EOF (clean end between frames), io.ErrUnexpectedEOF, the stream's
// error, ErrFrameTooLarge or ErrMalformed; after an error the Reader is unusable.
func (fr *Reader) ReadFrame() (Frame, error) { return fr.readFrame(false) }

// ReadFrameLent is ReadFrame, except that a Data payload that fits in the read buffer
// is lent, not copied: it is valid only until the next call on the Reader. A reader
// that is done with each payload before reading the next saves an allocation and a
// copy per message.
func (fr *Reader) ReadFrameLent() (Frame, error) { return fr.readFrame(true) }

// ReadRun reads frames, handing each Data payload to data for as long as whole
// frames are already buffered and data returns true. It returns the first frame of
// another type (f.Msg set), or a zero Frame once nothing more is buffered or data
// returned false; n is how many payloads went to data. With lend, payloads are lent
// as by ReadFrameLent (valid only during the call), else each is a fresh slice.
// Errors are those of ReadFrame. Reading a run saves a call and a Frame copy per
// message.
func (fr *Reader) ReadRun(lend bool, data func([]byte) bool) (f Frame, n int, err error) {
	for {
		f, err = fr.readFrame(lend)
		if err != nil || f.Msg != nil {
			return f, n, err
		}
		n++
		if !data(f.Data) || fr.Buffered() == 0 {
			return Frame{}, n, nil
		}
	}
}

func (fr *Reader) readFrame(lend bool) (Frame, error) {
	if fr.lent > 0 {
		fr.r.Discard(fr.lent) // the buffer may go back to the pool only now
		fr.lent = 0
	}
	hdr, err := fr.r.Peek(HeaderSize)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	// Compared before converting: on 32-bit platforms int(n) can be negative.
	size := binary.BigEndian.Uint32(hdr)
	if uint64(size) > uint64(max(fr.max, 0)) {
		return Frame{}, fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, size, fr.max)
	}
	n := int(size)
	fr.r.Discard(HeaderSize)
	if d, ok, err := fr.readData(n, lend); ok || err != nil {
		return Frame{Data: d}, err
	}
	var body []byte
	if n > keptBody {
		body = make([]byte, n) // a rare large control frame
	} else {
		// Decoding copies what it keeps, so the body's buffer goes back at once.
		bp := poolFor(keptBody).Get().(*[]byte)
		defer poolFor(keptBody).Put(bp)
		body = (*bp)[:n]
	}
	if _, err := io.ReadFull(fr.r, body); err != nil {
		return Frame{}, unexpected(err)
	}
	m, err := DecodeEnvelope(body)
	if d, ok := m.(Data); ok {
		return Frame{Data: d}, nil
	}
	return Frame{Msg: m}, err
}

// readData decodes a Data frame in the canonical encoding straight into a payload slice
// of its own, or with lend set, into a slice of the buffer if the frame fits there.
// ok is false when the frame is something else.
func (fr *Reader) readData(n int, lend bool) ([]byte, bool, error) {
	if n < 4 {
		return nil, false, nil
	}
	pre, err := fr.r.Peek(min(n, 7))
	if err != nil {
		return nil, false, unexpected(err)
	}
	if pre[0] != mpFixArray2 || pre[1] != byte(TypeData) {
		return nil, false, nil
	}
	var hdr, size int
	switch pre[2] {
	case mpBin8:
		hdr, size = 4, int(pre[3])
	case mpBin16:
		if len(pre) < 5 {
			return nil, false, nil
		}
		hdr, size = 5, int(binary.BigEndian.Uint16(pre[3:]))
	case mpBin32:
		if len(pre) < 7 {
			return nil, false, nil
		}
		hdr, size = 7, int(binary.BigEndian.Uint32(pre[3:]))
	default:
		return nil, false, nil
	}
	if hdr+size != n {
		return nil, true, fmt.Errorf("%w: data of %d bytes in a frame of %d", ErrMalformed, size, n)
	}
	if lend && n <= fr.r.size {
		frame, err := fr.r.Peek(n)
		if err != nil {
			return nil, true, unexpected(err)
		}
		fr.lent = n
		return frame[hdr:n:n], true, nil
	}
	fr.r.Discard(hdr)
	payload := make([]byte, size)
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return nil, true, unexpected(err)
	}
	return payload, true, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
