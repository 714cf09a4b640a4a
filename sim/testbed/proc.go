package testbed

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a background process inside a namespace, started by Start. Its standard
// output and standard error are captured together.
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and its output is read

	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{} // closed (and replaced) whenever output arrives
	err     error         // cmd.Wait's result, set before done is closed
}

// Start runs a command in the background inside namespace ns. The process and its
// children (its own process group) are killed by PID when t's test ends.
func (n *Net) Start(t testing.TB, ns string, args ...string) *Proc {
	t.Helper()
	p := &Proc{
		name:    ns + ": " + strings.Join(args, " "),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testbed: starting %s: %v", p.name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Write collects the process's output and wakes WaitFor.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	close(p.changed)
	p.changed = make(chan struct{})
	return len(b), nil
}

// Pid is the process's ID (ip netns exec execs the command, so it is the command's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process has written so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitFor waits until the process's output contains s. It fails if the process exits
// first or timeout passes; the error carries the output.
func (p *Proc) WaitFor(s string, timeout time.Duration) error {
	_, err := p.waitUntil(strconv.Quote(s), timeout, func(out string) []string {
		if strings.Contains(out, s) {
			return []string{s}
		}
		return nil
	})
	return err
}

// WaitForMatch waits until the process's output matches re and returns the leftmost
// match and its submatches. It fails like WaitFor.
func (p *Proc) WaitForMatch(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	return p.waitUntil("a match for "+re.String(), timeout, re.FindStringSubmatch)
}

// waitUntil calls match on the output each time it grows, until match returns
// non-nil, the process exits or timeout passes.
func (p *Proc) waitUntil(what string, timeout time.Duration, match func(string) []string) ([]string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		m := match(p.out.String())
		changed := p.changed
		p.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-p.done:
			if m := match(p.Output()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("%s exited (%v) before printing %s; output:\n%s", p.name, p.exitErr(), what, p.Output())
		case <-timer.C:
			return nil, fmt.Errorf("%s did not print %s within %v; output:\n%s", p.name, what, timeout, p.Output())
		}
	}
}

// Wait waits up to timeout for the process to exit and returns its exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(timeout):
		return fmt.Errorf("%s still runs after %v", p.name, timeout)
	}
}

func (p *Proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Kill kills the process group by its ID and waits for the process to be reaped.
// It is idempotent.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
