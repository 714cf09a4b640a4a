package config

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestWriteDefaultLoadsBack(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDefault(&b); err != nil {
		t.Fatal(err)
	}
	c, err := Load(&b, "default.toml")
	if err != nil {
		t.Fatalf("Load(WriteDefault()): %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(WriteDefault()) = %+v\nwant Default() = %+v", c, Default())
	}
}

// TestWriteDefaultEveryKey checks that WriteDefault sets every key, under a
// comment, and that no help is left for a key that is gone.
func TestWriteDefaultEveryKey(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDefault(&b); err != nil {
		t.Fatal(err)
	}
	var table map[string]any
	md, err := toml.Decode(b.String(), &table)
	if err != nil {
		t.Fatal(err)
	}
	var written, known []string
	for _, k := range md.Keys() {
		written = append(written, k.String())
	}
	for _, k := range knownKeys(reflect.TypeFor[Config](), nil) {
		known = append(known, k.String())
	}
	slices.Sort(written)
	slices.Sort(known)
	if !slices.Equal(written, known) {
		t.Errorf("WriteDefault wrote keys\n%q\nwant\n%q", written, known)
	}
	if len(keyHelp) != len(known) {
		t.Errorf("keyHelp has %d entries for %d keys", len(keyHelp), len(known))
	}
	lines := strings.Split(b.String(), "\n")
	for i, line := range lines {
		isKey := line != "" && !strings.HasPrefix(line, "#")
		if isKey && (i == 0 || !strings.HasPrefix(lines[i-1], "# ")) {
			t.Errorf("line %d %q has no comment above it", i+1, line)
		}
	}
}
