package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestValueSize(t *testing.T) {
	tests := []struct {
		name    string
		hex     string // the value, then possibly more bytes
		size    int    // 0: must fail
		wantErr error
	}{
		{"positive fixint", "07 ff", 1, nil},
		{"negative fixint", "e0", 1, nil},
		{"nil false true", "c0", 1, nil},
		{"fixstr", "a3 616263 00", 4, nil},
		{"str8", "d9 02 6869", 4, nil},
		{"str16", "da 0002 6869", 5, nil},
		{"str32", "db 00000002 6869", 7, nil},
		{"bin8", "c4 01 00", 3, nil},
		{"bin16", "c5 0001 00", 4, nil},
		{"bin32", "c6 00000001 00", 6, nil},
		{"uint8 int8", "cc ff", 2, nil},
		{"uint16", "cd 0102", 3, nil},
		{"uint32", "ce 01020304", 5, nil},
		{"uint64", "cf 0102030405060708", 9, nil},
		{"int64", "d3 0102030405060708", 9, nil},
		{"float32", "ca 3f800000", 5, nil},
		{"float64", "cb 3ff0000000000000", 9, nil},
		{"fixext1", "d4 01 02", 3, nil},
		{"fixext2", "d5 01 0203", 4, nil},
		{"fixext4", "d6 ff 00000000", 6, nil},
		{"fixext8", "d7 ff 0000000000000000", 10, nil},
		{"fixext16", "d8 01" + strings.Repeat("00", 16), 18, nil},
		{"ext8", "c7 02 05 0102", 5, nil},
		{"ext16", "c8 0002 05 0102", 6, nil},
		{"ext32", "c9 00000002 05 0102", 8, nil},
		{"empty array", "90 01", 1, nil},
		{"fixarray", "92 01 a1 78", 4, nil},
		{"array16", "dc 0002 01 02", 5, nil},
		{"array32", "dd 00000001 c0", 6, nil},
		{"fixmap", "81 a1 78 92 01 02", 6, nil},
		{"map16", "de 0001 01 02", 5, nil},
		{"map32", "df 00000001 01 02", 7, nil},
		{"nested", "92 91 91 c0 81 01 90", 7, nil},
		{"empty", "", 0, io.ErrUnexpectedEOF},
		{"reserved c1", "c1", 0, nil},
		{"short str", "a3 6162", 0, io.ErrUnexpectedEOF},
		{"short str8 header", "d9", 0, io.ErrUnexpectedEOF},
		{"short str32 header", "db 0000", 0, io.ErrUnexpectedEOF},
		{"str32 claims 4 GiB", "db ffffffff 00", 0, io.ErrUnexpectedEOF},
		{"short uint64", "cf 0102", 0, io.ErrUnexpectedEOF},
		{"short fixext16", "d8 01 00", 0, io.ErrUnexpectedEOF},
		{"short ext8 type", "c7 00", 0, io.ErrUnexpectedEOF},
		{"array missing items", "93 01 02", 0, io.ErrUnexpectedEOF},
		{"array32 claims 4G items", "dd ffffffff 01", 0, io.ErrUnexpectedEOF},
		{"map missing value", "81 01", 0, io.ErrUnexpectedEOF},
		{"map32 claims 4G pairs", "df ffffffff 01 02", 0, io.ErrUnexpectedEOF},
		{"nested item invalid", "92 01 c1", 0, nil},
		{"deepest allowed", strings.Repeat("91", maxNesting) + "c0", maxNesting + 1, nil},
		{"too deep", strings.Repeat("91", maxNesting+1) + "c0", 0, errTooDeep},
		{"too deep in a map", strings.Repeat("81 01", maxNesting+1) + "c0", 0, errTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, err := valueSize(unhex(t, tt.hex))
			switch {
			case tt.size == 0 && err == nil:
				t.Fatalf("valueSize = %d, want an error", size)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("valueSize = %d, %v; want %v", size, err, tt.wantErr)
			case tt.size != 0 && (err != nil || size != tt.size):
				t.Fatalf("valueSize = %d, %v; want %d", size, err, tt.size)
			}
		})
	}
}

// FuzzValueSize checks valueSize against msgpack's own Skip: both must accept the same
// values and agree on their length (nesting aside, which only valueSize limits).
func FuzzValueSize(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.hex)[HeaderSize:])
	}
	for _, v := range malformed {
		f.Add(unhex(f, v.env))
	}
	f.Add(unhex(f, "c7 02 05 0102 d8 01 00000000000000000000000000000000 ca 3f800000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		size, err := valueSize(b)
		if errors.Is(err, errTooDeep) {
			return
		}
		r := bytes.NewReader(b)
		skipErr := msgpack.NewDecoder(r).Skip()
		skipped := len(b) - r.Len()
		if strconv.IntSize == 32 && err != nil && skipErr == nil {
			// On 32-bit platforms msgpack reads a length of 2^31 or more as negative
			// and skips nothing; valueSize is right to refuse.
			return
		}
		if (err == nil) != (skipErr == nil) {
			t.Fatalf("valueSize = %d, %v; msgpack Skip: %v", size, err, skipErr)
		}
		if err == nil && size != skipped {
			t.Fatalf("valueSize = %d, msgpack skipped %d", size, skipped)
		}
	})
}
