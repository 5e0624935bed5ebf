//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

// The demo's /metrics, scraped by a real Prometheus (the Debian package),
// holds the series the dashboard (docs/dashboards/levee.json) queries, with
// the labels it groups by. The test starts Prometheus with its own config,
// storage and port, runs the demo in process with -metrics on a free port
// and a payment outage (so the breaker series exist), and asks Prometheus's
// HTTP API until every expected series is there.
func TestPrometheusScrapesDemo(t *testing.T) {
	bin := promBinary(t)
	metricsAddr := promFreeAddr(t)
	prom := promStart(t, bin, metricsAddr)

	o := testOptions()
	o.metrics = metricsAddr
	o.malformed, o.badPhones, o.big = 3, 2, 2                                // dead letters: validation (payments, sms), permanent
	o.rate, o.outage, o.outageAfter = 100, time.Second, 200*time.Millisecond // breaker opens, waits, drains
	o.linger = 45 * time.Second                                              // ended early by cancel below
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.Buffer{}
	runErr := make(chan error, 1)
	go func() { runErr <- run(ctx, o, out) }()
	defer func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v\n%s", err, out.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("run did not return after cancel:\n%s", out.String())
		}
	}()

	// Series checked, with the labels the dashboard groups or filters by.
	// Each query must return at least one series carrying every label.
	checks := []struct {
		query  string
		labels []string
	}{
		{`levee_handler_messages_total{handler="payments",topic="orders",outcome="acked"}`, nil},
		{`levee_handler_messages_total{handler="payments",outcome="dead_lettered",class="validation"}`, nil},
		{`levee_handler_messages_total{handler="sms",outcome="dead_lettered",class="validation"}`, nil},
		{`levee_handler_duration_seconds_bucket{handler="inventory",topic="inventory.reserve"}`, []string{"le", "outcome"}},
		{`levee_breaker_state{breaker="payments"}`, nil},
		{`levee_breaker_paused{breaker="payments",handler="payments"}`, nil},
		{`levee_breaker_wait_duration_seconds_bucket{breaker="payments",handler="payments"}`, []string{"le", "outcome"}},
		{`levee_breaker_drain_progress_ratio{breaker="payments"}`, nil},
		{`levee_breaker_drain_rate_per_second{breaker="payments"}`, nil},
		{`levee_ratelimit_wait_duration_seconds_bucket{handler="sms",topic="sms.send"}`, []string{"le", "limiter"}},
		{`levee_priority_wait_duration_seconds_bucket{handler="payments",scheduler="gateway",priority="9"}`, []string{"le"}},
		{`levee_batch_size_bucket{handler="inventory"}`, []string{"le", "reason"}},
		{`levee_dlq_dead_letters_total{handler="payments",topic="orders",class="validation"}`, nil},
		{`levee_dlq_dead_letters_total{handler="sms",class="validation"}`, nil},
		{`levee_dlq_group_new_in_window`, []string{"group"}},
	}
	// Dashboard series this run does not produce: they appear only after
	// their event (a rate-limit rejection, a malformed traceparent) or
	// with a fleet breaker, which the demo does not configure.
	eventOnly := map[string]bool{"levee_ratelimit_rejected_total": true, "levee_tracing_invalid_context_total": true,
		"levee_fleet_breaker_state": true}

	targets := promDashboardTargets(t)
	var problems, notes []string
	deadline := time.Now().Add(40 * time.Second)
	for {
		problems, notes = problems[:0], notes[:0]
		for _, c := range checks {
			if err := promHasSeries(prom, c.query, c.labels); err != nil {
				problems = append(problems, err.Error())
			}
		}
		// Every dashboard expression is valid PromQL for this Prometheus
		// and, unless all its series are event-only, returns series with
		// the labels it groups by (rate() needs two scrapes of a series).
		for _, target := range targets {
			expr := strings.NewReplacer(`$handler`, `.*`, `$__rate_interval`, `1m`).Replace(target.expr)
			optional := true
			for _, n := range regexp.MustCompile(`levee_[a-z_]+`).FindAllString(expr, -1) {
				optional = optional && eventOnly[n]
			}
			var labels []string
			for _, m := range regexp.MustCompile(`by \(([^)]*)\)`).FindAllStringSubmatch(expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "le" { // histogram_quantile consumes le
						labels = append(labels, l)
					}
				}
			}
			err := promHasSeries(prom, expr, labels)
			switch {
			case err == nil:
			case optional && strings.HasSuffix(err.Error(), ": no series"):
				notes = append(notes, fmt.Sprintf("panel %q: %v (event-only: not produced by this run)", target.panel, err))
			default:
				problems = append(problems, fmt.Sprintf("panel %q: %v", target.panel, err))
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range notes {
		t.Log(n)
	}
	if len(problems) > 0 {
		t.Fatalf("Prometheus answers lack series:\n  %s\ndemo output:\n%s", strings.Join(problems, "\n  "), out.String())
	}
	if !strings.Contains(out.String(), "serving metrics on http://"+metricsAddr+"/metrics") {
		t.Errorf("report does not name the metrics address %s:\n%s", metricsAddr, out.String())
	}
}

// promBinary returns the prometheus binary, installing the Debian package
// when it is missing and the test runs as root; otherwise it skips.
func promBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if os.Geteuid() != 0 {
		t.Skip("prometheus is not installed and the test is not root: run `apt-get install -y prometheus` (Debian package)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "prometheus")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install -y prometheus: %v\n%s", err, outb)
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus installed but not on PATH: %v", err)
	}
	return p
}

// promFreeAddr returns a loopback address with a port that was free a
// moment ago.
func promFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// promServer is a running Prometheus and the client used to query it.
type promServer struct {
	base   string
	client *http.Client
}

// promStart starts Prometheus scraping target every second, with its
// storage in a temporary folder and its API on a free loopback port, waits
// until it is ready, and stops it (its whole process group) at cleanup.
func promStart(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: levee-orders
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := promFreeAddr(t)
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn",
	)
	logs := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tr := &http.Transport{}
	s := &promServer{base: "http://" + listen, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.client.Get(s.base + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready on %s after 30s (last error %v):\n%s", listen, err, logs.String())
		}
	}
}

// promSeries is one element of an instant-query vector result.
type promSeries struct {
	Metric map[string]string `json:"metric"`
}

// promQuery runs an instant query through /api/v1/query.
func promQuery(s *promServer, query string) ([]promSeries, error) {
	resp, err := s.client.Get(s.base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decoding the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("got result type %q, want vector", body.Data.ResultType)
	}
	return body.Data.Result, nil
}

// promHasSeries reports an error unless query returns a series carrying
// every label in labels.
func promHasSeries(s *promServer, query string, labels []string) error {
	res, err := promQuery(s, query)
	if err != nil {
		return fmt.Errorf("%s: %v", query, err)
	}
	if len(res) == 0 {
		return fmt.Errorf("%s: no series", query)
	}
	for _, l := range labels {
		if _, ok := res[0].Metric[l]; !ok {
			return fmt.Errorf("%s: series %v lacks label %q", query, res[0].Metric, l)
		}
	}
	return nil
}

type promTarget struct{ panel, expr string }

// promDashboardTargets returns every query of docs/dashboards/levee.json.
func promDashboardTargets(t *testing.T) []promTarget {
	t.Helper()
	raw, err := os.ReadFile("../../docs/dashboards/levee.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var out []promTarget
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, promTarget{p.Title, tg.Expr})
		}
	}
	if len(out) < 10 {
		t.Fatalf("dashboard has only %d queries", len(out))
	}
	return out
}
