package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestReplayCanary: `replay --canary` halts on a broken downstream (exit 1,
// the other letter untouched) and finishes once it is fixed.
func TestReplayCanary(t *testing.T) {
	cmd, s, _, out, errb := dlqTestCmd(t)
	down, err := dlqtest.NewDownstream(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd.openPublisher = func(context.Context, *config.Config) (message.Publisher, func() error, error) {
		return down, func() error { return nil }, nil
	}
	args := []string{"--config", cmd.configPath, "replay", "--group", "aaaaaaaaaaaaaaaa", "--canary", "--wait", "100ms", "--rate", "0"}
	if code := cmd.run(context.Background(), args); code != 1 || !strings.Contains(errb.String(), "canary replay halted") {
		t.Fatalf("broken downstream: exit %d, stderr %q", code, errb)
	}
	if !strings.Contains(out.String(), "wave 1: size 1, replayed 1, held 0, dead-lettered again 1, processed 0 (halted)") {
		t.Errorf("report: %q", out)
	}
	if dl, _ := s.Get(context.Background(), "a2"); dl.Status != dlqops.StatusNew || dl.Reason != "" {
		t.Errorf("the letter after the halt: %s %q, want untouched", dl.Status, dl.Reason)
	}
	down.SetBroken(false)
	out.Reset()
	errb.Reset()
	if code := cmd.run(context.Background(), args); code != 0 {
		t.Fatalf("fixed downstream: exit %d, stderr %q", code, errb)
	}
	if !strings.Contains(out.String(), "replayed 1, processed 1, dead-lettered again 0") {
		t.Errorf("report: %q", out)
	}
	if code := cmd.run(context.Background(), []string{"--config", cmd.configPath, "replay", "--all", "--canary", "--waves", "1,x"}); code != 2 {
		t.Errorf("bad waves: exit %d want 2", code)
	}
}

// TestServeRefusesWithoutAuth: `serve` needs users or tokens, or
// --insecure-loopback on a loopback address; with it, it serves.
func TestServeRefusesWithoutAuth(t *testing.T) {
	cmd, _, _, _, errb := dlqTestCmd(t)
	if code := cmd.run(context.Background(), []string{"--config", cmd.configPath, "serve", "--no-replay"}); code != 1 ||
		!strings.Contains(errb.String(), "console.users or console.tokens") {
		t.Fatalf("no auth: exit %d %q", code, errb)
	}
	errb.Reset()
	if code := cmd.run(context.Background(), []string{"--config", cmd.configPath, "serve", "--no-replay", "--insecure-loopback", "--listen", "0.0.0.0:0"}); code != 1 {
		t.Fatalf("insecure on every address: exit %d %q", code, errb)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- cmd.run(ctx, []string{"--config", cmd.configPath, "serve", "--no-replay", "--insecure-loopback", "--listen", addr})
	}()
	var resp *http.Response
	for range 100 {
		if resp, err = http.Get("http://" + addr + "/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /: %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d", code)
	}
}
