package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crust-p2p/crust/admin"
)

// scrape fetches http://addr/metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s, %v", addr, resp.Status, err)
	}
	return string(body)
}

// waitMetrics scrapes d until every line is in the answer: a sender counts what it
// sent once its write returns, which has no event to wait on.
func (d *daemonProc) waitMetrics(lines ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := scrape(d.t, d.metrics)
		missing := ""
		for _, l := range lines {
			if !strings.Contains(body, l+"\n") {
				missing = l
				break
			}
		}
		if missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no %q in the metrics:\n%s", d.id[:8], missing, body)
		}
		time.Sleep(20 * time.Millisecond) // each try is an HTTP request to another process
	}
}

// Two daemons on loopback, with the metrics endpoint on 127.0.0.1 (one by the
// -metrics flag, one by metrics_addr): after a connect and a message, /metrics shows
// the connection's kind and the traffic, with Go's and the process's metrics; the
// endpoint closes with the daemon.
func TestDaemonMetrics(t *testing.T) {
	a := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""), "-metrics", "127.0.0.1:0")
	b := startDaemon(t, loopbackConfig(t.TempDir(), 0, `metrics_addr = "127.0.0.1:0"`))
	if a.metrics == "" || b.metrics == "" {
		t.Fatalf("no metrics address in the ready lines: A %q, B %q", a.metrics, b.metrics)
	}
	var self admin.Self
	if err := json.Unmarshal([]byte(b.cli("self", "--json")), &self); err != nil {
		t.Fatal(err)
	}
	if out := a.cli("connect", self.Contact); !strings.Contains(out, "connected "+b.id) {
		t.Fatalf("connect printed %q", out)
	}
	a.cli("send", b.id, "hello")
	body := a.waitMetrics(
		`crust_connections{kind="tcp-direct"} 1`,
		`crust_ladder_attempts_total{step="tcp-direct"} 1`,
		`crust_ladder_successes_total{kind="tcp-direct"} 1`,
		`crust_messages_total{direction="out"} 1`,
		`crust_bytes_total{direction="out"} 5`,
	)
	for _, family := range []string{"crust_punch_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, "# TYPE "+family+" ") {
			t.Errorf("A's metrics lack %s:\n%s", family, body)
		}
	}
	b.waitMetrics(
		`crust_connections{kind="tcp-direct"} 1`,
		`crust_messages_total{direction="in"} 1`,
		`crust_bytes_total{direction="in"} 5`,
	)

	if err := a.stop(); err != nil {
		t.Fatalf("A exited with %v after SIGINT:\n%s", err, a.stderr)
	}
	if c, err := net.Dial("tcp", a.metrics); err == nil {
		c.Close()
		t.Fatalf("A's metrics endpoint %s still accepts connections after the daemon stopped", a.metrics)
	}
}

// Without -metrics or metrics_addr there is no endpoint.
func TestDaemonMetricsOffByDefault(t *testing.T) {
	d := startDaemon(t, loopbackConfig(t.TempDir(), 0, ""))
	if d.metrics != "" {
		t.Fatalf("metrics endpoint at %s with none configured", d.metrics)
	}
	if strings.Contains(d.stderr.String(), "metrics=127") {
		t.Fatalf("the log names a metrics endpoint:\n%s", d.stderr)
	}
}

// A bad -metrics address exits 2 naming the flag; one that cannot be bound stops
// the daemon before its node starts, with exit 1 and the reason; -metrics "" turns
// off a metrics_addr from the config.
func TestDaemonMetricsBadAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name, extra string
		args        []string
		code        int
		want        []string
	}{
		{"no port", "", []string{"-metrics", "127.0.0.1"}, 2, []string{`-metrics: "127.0.0.1": want host:port`}},
		{"a URL", "", []string{"-metrics", "http://127.0.0.1:9464/metrics"}, 2, []string{"-metrics:", "want host:port"}},
		{"taken", "", []string{"-metrics", taken.Addr().String()}, 1, []string{"metrics endpoint:", "address already in use", "choose another metrics_addr"}},
		{"taken, from the config", `metrics_addr = "` + taken.Addr().String() + `"`, nil, 1, []string{"metrics endpoint:", "address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--config", "-", "--loglevel", "off"}, tc.args...)
			code := run(args, strings.NewReader(loopbackConfig(t.TempDir(), 0, tc.extra)), &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr %q does not say %q", errOut.String(), w)
				}
			}
			if strings.Contains(out.String(), "ready") {
				t.Errorf("the daemon got ready: %q", out.String())
			}
		})
	}

	// The flag wins over the config, even to turn the endpoint off.
	d := startDaemon(t, loopbackConfig(t.TempDir(), 0, `metrics_addr = "`+taken.Addr().String()+`"`), "-metrics", "")
	if d.metrics != "" {
		t.Fatalf("metrics endpoint at %s after -metrics \"\"", d.metrics)
	}
}
