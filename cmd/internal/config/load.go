package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// maxReported bounds the mistakes Load reports: finding each one's line parses the
// file again.
const maxReported = 20

// Load reads a TOML configuration from r over Default: a key the file leaves out
// keeps its default. name is the file name for messages; "-" is shown as
// "<stdin>".
//
// Load reports the mistakes it finds, up to 20, not only the first: a TOML syntax
// error; else unknown keys and values of the wrong type; else bad values. Each is an
// *Error naming the file, the line and the key, in the order of the file.
func Load(r io.Reader, name string) (Config, error) {
	if name == "-" {
		name = "<stdin>"
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("reading %s: %w", name, err)
	}
	text := string(data)

	// First the document's shape, checked against Config's fields; only a document
	// that fits is decoded, so that the decoder's own, terser errors never show.
	var table map[string]any
	md, err := toml.Decode(text, &table)
	if err != nil {
		return Config{}, syntaxError(name, err)
	}
	doc := document{name: name, text: text, keys: md.Keys()}
	if errs := checkShape(table, reflect.TypeFor[Config](), nil); len(errs) > 0 {
		return Config{}, doc.locate(errs)
	}
	c := Default()
	if _, err := toml.Decode(text, &c); err != nil {
		return Config{}, syntaxError(name, err) // checkShape lets nothing through that fails here
	}
	if _, errs := c.check(); len(errs) > 0 {
		return Config{}, doc.locate(errs)
	}
	return c, nil
}

// syntaxError turns the decoder's error into an *Error.
func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Err: err}
	}
	return &Error{File: name, Line: pe.Position.Line, Err: errors.New(pe.Message)}
}

// document is a configuration file being loaded.
type document struct {
	name string
	text string
	keys []toml.Key // every key set, tables too, in the order of the text
}

// locate sets the file and line of each of errs, puts them in the order of the
// text, and joins them.
func (d document) locate(errs []*Error) error {
	order := make(map[string]int, len(d.keys))
	for i, k := range d.keys {
		order[k.String()] = i + 1
	}
	// A key left at its default (0) is not in the text: last.
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(cmp.Or(order[a.Key], math.MaxInt), cmp.Or(order[b.Key], math.MaxInt))
	})
	var more error
	if len(errs) > maxReported {
		more = fmt.Errorf("%s: %d more mistakes", d.name, len(errs)-maxReported)
		errs = errs[:maxReported]
	}
	joined := make([]error, 0, len(errs)+1)
	for _, e := range errs {
		e.File, e.Line = d.name, d.line(e.path)
		joined = append(joined, e)
	}
	return errors.Join(append(joined, more)...)
}

// line returns the line of a key path, or 0. A key set only through dotted keys
// ("limits.x.y = 1" sets limits.x) has no line of its own: its first key below has.
// A key left at its default has none either, but its table may have.
func (d document) line(path toml.Key) int {
	if n := keyLine(d.text, path); n > 0 {
		return n
	}
	for _, k := range d.keys {
		if len(k) > len(path) && slices.Equal(k[:len(path)], path) {
			if n := keyLine(d.text, k); n > 0 {
				return n
			}
		}
	}
	if len(path) > 1 {
		return d.line(path[:len(path)-1])
	}
	return 0
}

// keyLine returns the line where the key path is set in text, or 0 if it is not.
//
// The decoder knows the line of every key, but tells it only in the ParseError of a
// value that fails to decode. So keyLine decodes text once more, into a struct that
// holds that one key, as a field whose decoding always fails.
func keyLine(text string, path toml.Key) int {
	t := reflect.TypeFor[failDecode]()
	for _, name := range slices.Backward(path) {
		if name == "" || name == "-" || strings.Contains(name, ",") {
			return 0 // not expressible as a toml struct tag
		}
		t = reflect.StructOf([]reflect.StructField{{
			Name: "Key",
			Type: t,
			Tag:  reflect.StructTag("toml:" + strconv.Quote(name)),
		}})
	}
	_, err := toml.Decode(text, reflect.New(t).Interface())
	var pe toml.ParseError
	// The decoder matches keys case-insensitively if need be; only the key itself
	// counts.
	if errors.As(err, &pe) && pe.LastKey == path.String() {
		return pe.Position.Line
	}
	return 0
}

// failDecode fails to decode any value, so that the decoder says where the value is.
type failDecode struct{}

// UnmarshalTOML fails.
func (*failDecode) UnmarshalTOML(any) error { return errors.New("located") }

// checkShape reports each key of table that the struct type t has no field for, and
// each value whose TOML type does not fit its field.
//
// It matches keys exactly, as TOML means them; the decoder would also take
// "Listen_Port" for listen_port, and MetaData.Undecoded would not list it.
func checkShape(table map[string]any, t reflect.Type, prefix toml.Key) []*Error {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		fields[t.Field(i).Tag.Get("toml")] = t.Field(i).Type
	}
	var errs []*Error
	for name, value := range table {
		path := append(slices.Clip(prefix), name)
		field, known := fields[name]
		switch {
		case !known:
			errs = append(errs, newError(path, unknownKey(path)))
		case field.Kind() == reflect.Struct:
			sub, ok := value.(map[string]any)
			if !ok {
				errs = append(errs, newError(path, fmt.Errorf("want a table, not %s", describe(value))))
				continue
			}
			errs = append(errs, checkShape(sub, field, path)...)
		default:
			if err := fits(value, field); err != nil {
				errs = append(errs, newError(path, err))
			}
		}
	}
	return errs
}

// fits reports whether a decoded TOML value can be stored in a field of type t.
func fits(value any, t reflect.Type) error {
	var want string
	switch {
	case t == reflect.TypeFor[Duration]():
		s, ok := value.(string)
		if !ok {
			return fmt.Errorf("want a duration like \"10s\", not %s", describe(value))
		}
		var d Duration
		return d.UnmarshalText([]byte(s))
	case t.Kind() == reflect.String:
		if _, ok := value.(string); ok {
			return nil
		}
		want = "a string"
	case t.Kind() == reflect.Int:
		if _, ok := value.(int64); ok {
			return nil
		}
		want = "an integer"
	case t.Kind() == reflect.Float64:
		switch value.(type) {
		case float64, int64:
			return nil
		}
		want = "a number"
	case t.Kind() == reflect.Bool:
		if _, ok := value.(bool); ok {
			return nil
		}
		want = "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		list, ok := value.([]any)
		if !ok {
			return fmt.Errorf("want an array of strings, like [\"a\", \"b\"], not %s", describe(value))
		}
		for i, v := range list {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("element %d is %s, not a string", i+1, describe(v))
			}
		}
		return nil
	default:
		panic(fmt.Sprintf("config: no TOML type for a field of type %s", t))
	}
	return fmt.Errorf("want %s, not %s", want, describe(value))
}

// describe names a decoded TOML value for a message: "the string \"x\"".
func describe(value any) string {
	switch v := value.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// unknownKey is the error for an unknown key path, with the known key it most likely
// meant.
func unknownKey(path toml.Key) error {
	if guess := likelyKey(path); guess != "" {
		return fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownKey, path.String(), guess)
	}
	return fmt.Errorf("%w %q", ErrUnknownKey, path.String())
}

// likelyKey returns the known key that path most likely meant, or "": the same
// name in another table, else a key at most two edits away.
func likelyKey(path toml.Key) string {
	name := path[len(path)-1]
	known := knownKeys(reflect.TypeFor[Config](), nil)
	for _, k := range known {
		if k[len(k)-1] == name {
			return k.String()
		}
	}
	for _, k := range known {
		if len(k) == len(path) && editDistance(k.String(), path.String()) <= 2 {
			return k.String()
		}
	}
	return ""
}

// knownKeys lists the keys of the struct type t, tables included, in field order.
func knownKeys(t reflect.Type, prefix toml.Key) []toml.Key {
	var keys []toml.Key
	for i := range t.NumField() {
		f := t.Field(i)
		key := append(slices.Clip(prefix), f.Tag.Get("toml"))
		keys = append(keys, key)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, knownKeys(f.Type, key)...)
		}
	}
	return keys
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
