package console

import (
	"bytes"
	"regexp"
	"testing"
)

func TestNewLogger(t *testing.T) {
	for _, level := range []string{"off", "error", "WARN", "info", "debug"} {
		if _, err := NewLogger(level, &bytes.Buffer{}); err != nil {
			t.Errorf("%s: %v", level, err)
		}
	}
	if _, err := NewLogger("loud", &bytes.Buffer{}); err == nil {
		t.Error("an unknown level was accepted")
	}
	var out bytes.Buffer
	log, _ := NewLogger("warn", &out)
	log.Info("hidden")
	log.Warn("shown")
	if bytes.Contains(out.Bytes(), []byte("hidden")) || !bytes.Contains(out.Bytes(), []byte("shown")) {
		t.Errorf("warn logger wrote %q", out.String())
	}
}

func TestNewJSONLogger(t *testing.T) {
	var out bytes.Buffer
	log, err := NewJSONLogger("info", &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "k", 1)
	if got := out.String(); !regexp.MustCompile(`^\{"time":.*"level":"INFO","msg":"shown","k":1\}\n$`).MatchString(got) {
		t.Errorf("JSON logger wrote %q", got)
	}
}

func TestPrinter(t *testing.T) {
	var out bytes.Buffer
	p := NewPrinter(&out)
	p.Line("hello %d", 7)
	p.Block("table", "a\nb\n")
	want := regexp.MustCompile(`^ *\d+\.\d{3}s hello 7\n *\d+\.\d{3}s --- table ---\n {10}a\n {10}b\n$`)
	if !want.MatchString(out.String()) {
		t.Errorf("printed %q", out.String())
	}
}
