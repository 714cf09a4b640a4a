// Package console is what crust's command-line programs share for talking to a
// person: the -loglevel flag's logger, and a printer that writes whole, time-stamped
// lines from any goroutine.
package console

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// NewLogger returns a text logger to w at the named level: off, error, warn, info or
// debug (any case); "off" discards everything.
func NewLogger(level string, w io.Writer) (*slog.Logger, error) {
	return newLogger(level, w, false)
}

// NewJSONLogger is NewLogger with one JSON object per line, for log collectors.
func NewJSONLogger(level string, w io.Writer) (*slog.Logger, error) {
	return newLogger(level, w, true)
}

func newLogger(level string, w io.Writer, json bool) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "off":
		return slog.New(slog.DiscardHandler), nil
	case "error":
		l = slog.LevelError
	case "warn":
		l = slog.LevelWarn
	case "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	default:
		return nil, fmt.Errorf("-loglevel %q: want off, error, warn, info or debug", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// Printer writes whole lines to w from any goroutine, each stamped with the seconds
// since NewPrinter.
type Printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// NewPrinter returns a Printer to w, its clock starting now.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w, start: time.Now()} }

func (p *Printer) stamp() string { return fmt.Sprintf("%7.3fs", time.Since(p.start).Seconds()) }

// Line prints one line: "  1.234s " and the formatted text.
func (p *Printer) Line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s\n", p.stamp(), fmt.Sprintf(format, args...))
}

// Block prints a titled block of lines, indented, in one piece.
func (p *Printer) Block(title, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s --- %s ---\n", p.stamp(), title)
	for l := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(p.w, "          %s\n", l)
	}
}
