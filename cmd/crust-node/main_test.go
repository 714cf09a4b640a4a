package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crust-p2p/crust/admin"
	"github.com/crust-p2p/crust/cmd/internal/config"
	"go.uber.org/goleak"
)

// binary is the crust-node built by TestMain, run as a process by the tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crust-node-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "crust-node")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building crust-node:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every test's processes, admin clients and watchers are gone by now.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// freeUDPPort returns a UDP port free on loopback now, for a beacon the test owns.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// loopbackConfig is a daemon config that keeps every packet on loopback: listening on
// 127.0.0.1, the beacon on 127.255.255.255 at beaconPort (0: beacon off), no UPnP
// (its SSDP search would go to the real LAN).
func loopbackConfig(dataDir string, beaconPort int, extra string) string {
	beacon := "beacon = false"
	if beaconPort != 0 {
		beacon = fmt.Sprintf("beacon_addresses = [\"127.255.255.255\"]\nbeacon_port = %d\nannounce_interval = \"1s\"", beaconPort)
	}
	return fmt.Sprintf(`data_dir = %q
listen_addresses = ["127.0.0.1"]
listen_port = 0
upnp = false
%s
%s
[limits]
keepalive_interval = "200ms"
peer_timeout = "3s"
shutdown_grace = "1s"
`, dataDir, beacon, extra)
}

// daemonProc is a crust-node daemon running as a process.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	id     string
	admin  string
	stderr *syncBuffer
	done   chan error
	// signalled: stop was asked for; a daemon gets one signal only.
	signalled bool
	// metrics is where the metrics endpoint listens ("metrics=" in the ready line),
	// "" when it is off.
	metrics string
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.b.String()
}

// startDaemon runs crust-node with cfg on standard input (--config -) and waits for
// its "ready" line; args are more flags. The process is stopped (SIGINT) at the end
// of the test.
func startDaemon(t *testing.T, cfg string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--config", "-", "--loglevel", "debug"}, args...)...)
	cmd.Stdin = strings.NewReader(cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, cmd: cmd, stderr: newSyncBuffer(), done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- sc.Text()
			}
		}
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() { d.stop() })
	select {
	case line := <-ready:
		f := strings.Fields(line)
		d.id, d.admin = f[1], strings.TrimPrefix(f[2], "admin=")
		for _, field := range f[3:] {
			if addr, ok := strings.CutPrefix(field, "metrics="); ok {
				d.metrics = addr
			}
		}
	case err := <-d.done:
		d.done <- err
		t.Fatalf("crust-node exited before it was ready (%v):\n%s", err, d.stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("crust-node not ready after 10s:\n%s", d.stderr)
	}
	return d
}

// stop sends SIGINT and returns the exit error (nil for exit 0). Idempotent.
func (d *daemonProc) stop() error { return d.stopWith(syscall.SIGINT) }

// stopWith sends sig, unless a signal was sent already, and waits for the exit.
func (d *daemonProc) stopWith(sig os.Signal) error {
	d.t.Helper()
	if !d.signalled {
		d.signalled = true
		d.cmd.Process.Signal(sig)
	}
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		d.t.Errorf("crust-node did not stop within 10s of SIGINT:\n%s", d.stderr)
		return <-d.done
	}
}

// cli runs a crust-node subcommand against d and returns its standard output.
func (d *daemonProc) cli(args ...string) string {
	d.t.Helper()
	args = append([]string{args[0], "--admin", d.admin}, args[1:]...)
	out, err := exec.Command(binary, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		d.t.Fatalf("crust-node %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

func (d *daemonProc) peers() []admin.Peer {
	d.t.Helper()
	var peers []admin.Peer
	if err := json.Unmarshal([]byte(d.cli("peers", "--json")), &peers); err != nil {
		d.t.Fatalf("peers --json: %v", err)
	}
	return peers
}

// waitPeers polls `crust-node peers --json` until the daemon is connected to all of
// ids.
func (d *daemonProc) waitPeers(ids ...string) []admin.Peer {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		peers := d.peers()
		got := map[string]bool{}
		for _, p := range peers {
			got[p.ID] = true
		}
		all := true
		for _, id := range ids {
			all = all && got[id]
		}
		if all {
			return peers
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: peers %v, want %v\n%s", d.id[:8], peers, ids, d.stderr)
		}
		time.Sleep(50 * time.Millisecond) // each poll is a process start and an admin round trip
	}
}

// Three daemons on loopback find each other by beacon; peers --json shows the mesh;
// send delivers; SIGINT stops each with exit 0 and a saved bootstrap file.
func TestThreeDaemons(t *testing.T) {
	port := freeUDPPort(t)
	var ds []*daemonProc
	for range 3 {
		ds = append(ds, startDaemon(t, loopbackConfig(t.TempDir(), port, "")))
	}
	for i, d := range ds {
		var others []string
		for j, o := range ds {
			if j != i {
				others = append(others, o.id)
			}
		}
		peers := d.waitPeers(others...)
		if len(peers) != 2 {
			t.Fatalf("%s has %d peers, want 2: %+v", d.id[:8], len(peers), peers)
		}
	}

	// B follows its events through the admin API; A sends with the CLI.
	a, b := ds[0], ds[1]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client, err := admin.Dial(ctx, b.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	events, err := client.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out := a.cli("send", b.id, "hello from the CLI"); !strings.Contains(out, "sent 18 bytes") {
		t.Fatalf("send printed %q", out)
	}
	for ev := range events {
		if ev.Type == admin.EventMessage {
			if ev.From != a.id || ev.Text != "hello from the CLI" {
				t.Fatalf("message event %+v, want from %s text %q", ev, a.id, "hello from the CLI")
			}
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("no message event before the deadline")
	}
	var sent admin.Peer
	for _, p := range a.peers() {
		if p.ID == b.id {
			sent = p
		}
	}
	if sent.MsgsOut != 1 || sent.BytesOut != 18 {
		t.Fatalf("sender's peers entry for B: %+v, want 1 message and 18 bytes out", sent)
	}
	if out := a.cli("peers"); !strings.Contains(out, b.id) || !strings.Contains(out, "2 peer(s)") {
		t.Fatalf("peers table:\n%s", out)
	}
	var stats admin.Stats
	if err := json.Unmarshal([]byte(a.cli("stats", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if st := stats.Ladder["tcp-direct"]; st.Successes == 0 {
		t.Fatalf("stats %+v: no tcp-direct session counted", stats)
	}

	for _, d := range ds {
		if err := d.stop(); err != nil {
			t.Fatalf("%s exited with %v after SIGINT:\n%s", d.id[:8], err, d.stderr)
		}
		if !strings.Contains(d.stderr.String(), "crust-node stopped") {
			t.Fatalf("no clean stop logged:\n%s", d.stderr)
		}
	}
}

// A daemon connected to B and C restarts with no contacts and no beacon, and
// reconnects to both from its bootstrap file alone.
func TestDaemonRestartFromBootstrapFile(t *testing.T) {
	b := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""))
	c := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""))
	dirA := t.TempDir()
	a := startDaemon(t, loopbackConfig(dirA, 0, ""))
	for _, peer := range []*daemonProc{b, c} {
		var self admin.Self
		if err := json.Unmarshal([]byte(peer.cli("self", "--json")), &self); err != nil {
			t.Fatal(err)
		}
		if out := a.cli("connect", self.Contact); !strings.Contains(out, "connected "+peer.id) {
			t.Fatalf("connect printed %q", out)
		}
	}
	if err := a.stopWith(syscall.SIGTERM); err != nil { // as clean as SIGINT
		t.Fatalf("A exited with %v after SIGTERM:\n%s", err, a.stderr)
	}
	a2 := startDaemon(t, loopbackConfig(dirA, 0, ""))
	if a2.id != a.id {
		t.Fatalf("restarted daemon has ID %s, want %s", a2.id, a.id)
	}
	a2.waitPeers(b.id, c.id)
	var entries []admin.BootstrapEntry
	if err := json.Unmarshal([]byte(a2.cli("bootstrap", "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].LastSuccess == nil || entries[1].LastSuccess == nil {
		t.Fatalf("bootstrap entries %+v, want B and C with a last success", entries)
	}
}

// A second daemon on the same data directory exits non-zero, naming the lock.
func TestDaemonDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, loopbackConfig(dir, 0, ""))
	cmd := exec.Command(binary, "--config", "-")
	cmd.Stdin = strings.NewReader(loopbackConfig(dir, 0, ""))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("second daemon: %v, want a non-zero exit", err)
	}
	if !strings.Contains(stderr.String(), "bootstrap.lock") || !strings.Contains(stderr.String(), "locked") {
		t.Fatalf("second daemon's error does not name the lock:\n%s", stderr.String())
	}
}

// --print-default prints a config that parses back to the defaults.
func TestPrintDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--print-default"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	cfg, err := config.Load(strings.NewReader(text), "default.toml")
	if err != nil {
		t.Fatalf("the default config does not load: %v", err)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Fatalf("the printed defaults load as %+v, want %+v", cfg, config.Default())
	}
	for _, key := range []string{"data_dir", "listen_port", "beacon_port", "contacts", "stun_servers", "upnp", "whitelist", "blacklist", "blacklist_prefixes", "admin", "[limits]"} {
		if !strings.Contains(text, key) {
			t.Errorf("--print-default lacks %s", key)
		}
	}
}

// Config errors exit 2 and name the key and the line.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"listen_port = 0\nlisten_prot = 5\n", `<stdin>:2: unknown key "listen_prot"`},
		{"[limits]\npeer_timeout = \"soon\"\n", "peer_timeout"},
		{"listen_port = 99999\n", "listen_port"},
		{"whitelist = [\"nobody\"]\n", "whitelist"},
		{"metrics_addr = \"9464\"\n", `<stdin>:1: metrics_addr: "9464": want host:port`},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"--config", "-"}, strings.NewReader(tc.config), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("config %q: exit %d, stderr %q; want exit 2 and %q", tc.config, code, errOut.String(), tc.want)
		}
	}
}

// A subcommand with no daemon behind the address says so and exits 1.
func TestCLINoDaemon(t *testing.T) {
	var out, errOut bytes.Buffer
	sock := "unix://" + filepath.Join(t.TempDir(), "admin.sock")
	if code := run([]string{"peers", "--admin", sock}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no daemon") {
		t.Fatalf("exit %d, stderr %q; want 1 and a clear message", code, errOut.String())
	}
	if code := run([]string{"send", "--admin", sock, "only-one-arg"}, nil, &out, &errOut); code != 2 {
		t.Fatalf("send with one argument: exit %d, want 2", code)
	}
}

// `make run`'s script: NODES daemons find each other, the live view shows the mesh,
// and they stop cleanly, leaving no temp directory behind.
func TestRunNodesScript(t *testing.T) {
	script, err := filepath.Abs("../../scripts/run-nodes.sh")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command("bash", script, binary)
	cmd.Env = append(os.Environ(), "NODES=3", "RUN_SECONDS=3", fmt.Sprintf("BEACON_PORT=%d", freeUDPPort(t)), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run-nodes.sh: %v\n%s", err, out)
	}
	views := strings.Split(string(out), "crust-node peers, every second")
	last := views[len(views)-1]
	if n := strings.Count(last, "2 peer(s)"); n != 3 {
		t.Fatalf("the last view shows %d nodes with 2 peers, want 3:\n%s", n, last)
	}
	if n := strings.Count(last, "stopped cleanly (exit 0)"); n != 3 {
		t.Fatalf("%d nodes stopped cleanly, want 3:\n%s", n, last)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "crust-run.*")); len(left) != 0 {
		t.Fatalf("the script left %v behind", left)
	}
}
