//go:build integration

package telemetrytest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

// promServer is a real Prometheus (the Debian package `prometheus`) run by
// a test on a private port with its own storage, scraping one target every
// second.
type promServer struct {
	base   string
	client *http.Client
}

// startPrometheus starts Prometheus scraping target (host:port, path
// /metrics) and stops its process group at cleanup. It installs the Debian
// package when it is missing and the test runs as root, and skips
// otherwise.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("prometheus is not installed and the test is not root: apt-get install -y prometheus")
		}
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "prometheus")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install -y prometheus: %v\n%s", err, out)
		}
		if bin, err = exec.LookPath("prometheus"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"+
		"scrape_configs:\n  - job_name: levee\n    static_configs: [{targets: [%q]}]\n", target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
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
			exited <- err
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready on %s after 30s (%v):\n%s", listen, err, logs.String())
		}
	}
}

// promResult is the data of an /api/v1/query answer: a vector (value) or a
// matrix (values) of [unix seconds, "number"] pairs.
type promResult struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

// query runs an instant query at time at (now when zero).
func (s *promServer) query(ctx context.Context, q string, at time.Time) (promResult, error) {
	v := url.Values{"query": {q}}
	if !at.IsZero() {
		v.Set("time", fmt.Sprintf("%.3f", float64(at.UnixMilli())/1000))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/api/v1/query?"+v.Encode(), nil)
	if err != nil {
		return promResult{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return promResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return promResult{}, err
	}
	var out struct {
		Status string     `json:"status"`
		Error  string     `json:"error"`
		Data   promResult `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return promResult{}, fmt.Errorf("query %s: %w: %s", q, err, body)
	}
	if out.Status != "success" {
		return promResult{}, fmt.Errorf("query %s: %s", q, out.Error)
	}
	return out.Data, nil
}
