package config

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzLoad checks that Load never panics, that it explains every refusal with
// *Errors, and that what it accepts survives being written back as TOML.
func FuzzLoad(f *testing.F) {
	var def bytes.Buffer
	if err := WriteDefault(&def); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		def.String(),
		customText,
		"",
		"listen_port = 70000\n",
		"listen_prot = 1\n[limits]\nhandshake_timeout = \"abc\"\n",
		"limits = { peer_timeout = \"1s\" }\n",
		"limits.x.y = 1\n",
		"[[limits]]\n",
		"contacts = [\"nobody\", 2]\n",
		"admin = \"tcp://0.0.0.0:1\"\n",
		"listen_addresses = [\n",
		"data_dir = '''\nx = 1\n'''\n",
		"\"listen,port\" = 1\n\"\" = 2\n",
		"data_dir = \"a\\u0001\\\"\\\\\\t\u00e9\"\nadmin = 'unix:x y'\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Load(strings.NewReader(text), "fuzz.toml")
		if err != nil {
			checkErrors(t, err)
			return
		}
		var b bytes.Buffer
		if err := toml.NewEncoder(&b).Encode(c); err != nil {
			t.Fatalf("encoding %+v: %v", c, err)
		}
		again, err := Load(&b, "again.toml")
		if err != nil {
			t.Fatalf("Load of the accepted config written back: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("written back and loaded again:\n%+v\nwant\n%+v", again, c)
		}
	})
}

// checkErrors checks that err joins *Errors for the fuzzed file, but for a last
// count of those left out.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for i, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			if i == len(errs)-1 && strings.HasSuffix(e.Error(), "more mistakes") {
				continue
			}
			t.Fatalf("error %q is a %T, not an *Error", e, e)
		}
		if ce.File != "fuzz.toml" {
			t.Fatalf("error %q names file %q", e, ce.File)
		}
	}
}
