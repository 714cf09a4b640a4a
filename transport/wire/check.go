package wire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// maxNesting bounds how deeply arrays and maps may nest in a message body. Crust's own
// messages nest two deep (a Hello map holding the Endpoints array); the rest is room
// for newer peers.
const maxNesting = 32

// errTooDeep is returned for a body that nests deeper than maxNesting.
var errTooDeep = fmt.Errorf("containers nested deeper than %d", maxNesting)

// valueSize returns the length in bytes of the msgpack value at the start of b. It
// fails if b ends inside the value, holds a byte that is no msgpack type, or nests
// deeper than maxNesting. It neither recurses nor allocates, so it can vet hostile
// input before a decoder that trusts length headers sees it.
func valueSize(b []byte) (int, error) {
	var (
		pos   int
		depth int
		// left[d] is how many items the container open at depth d still holds;
		// depth 0 is the single top-level value.
		left [maxNesting + 1]uint64
	)
	left[0] = 1
	for {
		for left[depth] == 0 {
			if depth == 0 {
				return pos, nil
			}
			depth--
		}
		left[depth]--
		if pos >= len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		c := b[pos]
		pos++
		// An item is a code byte, then an optional big-endian length n of lenWidth
		// bytes, then fixed bytes, then n bytes (str, bin, ext) or n items (array) or
		// 2n items (map).
		var (
			lenWidth          int
			fixed             uint64 // bytes after the code and length
			bytesPerN         uint64 // payload bytes per unit of n: 1 for str, bin, ext
			itemsPerN         uint64 // nested items per unit of n: 1 for array, 2 for map
			n, items, payload uint64
		)
		switch {
		case c <= 0x7f, c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			items = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			payload = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				lenWidth, bytesPerN = 1, 1
			case 0xc5, 0xda: // bin16, str16
				lenWidth, bytesPerN = 2, 1
			case 0xc6, 0xdb: // bin32, str32
				lenWidth, bytesPerN = 4, 1
			case 0xc7: // ext8: length, type byte, data
				lenWidth, fixed, bytesPerN = 1, 1, 1
			case 0xc8: // ext16
				lenWidth, fixed, bytesPerN = 2, 1, 1
			case 0xc9: // ext32
				lenWidth, fixed, bytesPerN = 4, 1, 1
			case 0xcc, 0xd0: // uint8, int8
				fixed = 1
			case 0xcd, 0xd1: // uint16, int16
				fixed = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				fixed = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				fixed = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
				fixed = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				lenWidth, itemsPerN = 2, 1
			case 0xdd: // array32
				lenWidth, itemsPerN = 4, 1
			case 0xde: // map16
				lenWidth, itemsPerN = 2, 2
			case 0xdf: // map32
				lenWidth, itemsPerN = 4, 2
			default:
				return 0, fmt.Errorf("byte 0x%02x at offset %d is no msgpack type", c, pos-1)
			}
		}
		if len(b)-pos < lenWidth {
			return 0, io.ErrUnexpectedEOF
		}
		switch lenWidth {
		case 1:
			n = uint64(b[pos])
		case 2:
			n = uint64(binary.BigEndian.Uint16(b[pos:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(b[pos:]))
		}
		pos += lenWidth
		payload += fixed + bytesPerN*n
		items += itemsPerN * n
		if uint64(len(b)-pos) < payload {
			return 0, io.ErrUnexpectedEOF
		}
		pos += int(payload)
		if items == 0 {
			continue
		}
		// Every item takes at least one byte: a count beyond what is left is a lie.
		if items > uint64(len(b)-pos) {
			return 0, io.ErrUnexpectedEOF
		}
		if depth == maxNesting {
			return 0, errTooDeep
		}
		depth++
		left[depth] = items
	}
}

// Unmarshal decodes one msgpack value from b into v, after checking, without
// allocating, that b is exactly one well-formed value nesting at most 32 deep: a
// decoder that trusts length headers never sees hostile input. Use it for every
// msgpack structure that comes from outside, not only frames.
func Unmarshal(b []byte, v any) error {
	size, err := valueSize(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if size != len(b) {
		return fmt.Errorf("%w: %d bytes after the value", ErrMalformed, len(b)-size)
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
