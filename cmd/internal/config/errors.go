package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKey is wrapped by the Error for a key Config does not have: a typo, or a
// key of another version of crust-node.
var ErrUnknownKey = errors.New("unknown key")

// Error is one mistake in a configuration: where it is and what is wrong. Load
// returns the mistakes it finds, each an *Error, joined with errors.Join; its text
// is one line per mistake:
//
//	crust.toml:3: listen_port: 70000 is out of range 0..65535
//	crust.toml:7: unknown key "listen_prot" (did you mean "listen_port"?)
type Error struct {
	// File is the file name given to Load; empty for a Config checked by Service.
	File string
	// Line is where Key is set, from 1; 0 if unknown, as for a key left at its
	// default.
	Line int
	// Key is the dotted key, "limits.peer_timeout"; empty for a TOML syntax error.
	Key string
	// Err says what is wrong.
	Err error

	path toml.Key // Key's parts, to find Line
}

func newError(path toml.Key, err error) *Error {
	return &Error{Key: path.String(), Err: err, path: path}
}

// Error returns "file:line: key: what is wrong".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	// An unknown key's message names the key itself.
	if e.Key != "" && !errors.Is(e.Err, ErrUnknownKey) {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// joinErrors joins errs in the order of Config's fields, for errors.Join's one line
// each.
func joinErrors(errs []*Error) error {
	order := make(map[string]int)
	for i, k := range knownKeys(reflect.TypeFor[Config](), nil) {
		order[k.String()] = i
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(order[a.Key], order[b.Key]) })
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}
