//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestFleetKillSwitch: `levee fleet breaker KEY force open` opens a fleet
// breaker running on the same Redis within report_every; force none gives
// it back to the window; status prints the force.
func TestFleetKillSwitch(t *testing.T) {
	url := brokertest.RedisURL()
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	prefix := brokertest.Fresh(t, "levee_cli_fleet", func(p string) error {
		opt, _ := redis.ParseURL(url)
		c := redis.NewClient(opt)
		defer c.Close()
		keys, err := c.Keys(context.Background(), p+":*").Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return c.Del(context.Background(), keys...).Err()
	})
	ctx := context.Background()
	s, err := fleetredis.Open(ctx, url, prefix, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fb, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	cfg := filepath.Join(t.TempDir(), "levee.yaml")
	if err := os.WriteFile(cfg, []byte("fleet: {store: \""+url+"\", prefix: "+prefix+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args  []string
		out   string
		state breaker.FleetState
	}{
		{[]string{"fleet", "--config", cfg, "breaker", "payments", "force", "open"}, "fleet breaker payments: force open\n", breaker.FleetOpen},
		{[]string{"fleet", "--store", url, "--prefix", prefix, "breaker", "payments", "status"}, "fleet breaker payments: force open\n", breaker.FleetOpen},
		{[]string{"fleet", "--config", cfg, "breaker", "payments", "force", "none"}, "fleet breaker payments: force none\n", breaker.FleetClosed},
	} {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb); code != 0 || out.String() != tt.out {
			t.Fatalf("levee %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(tt.args, " "), code, out.String(), errb.String(), tt.out)
		}
		deadline := time.Now().Add(time.Second)
		for fb.State() != tt.state && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := fb.State(); got != tt.state {
			t.Errorf("after levee %s: replica state %s, want %s within 1s", strings.Join(tt.args, " "), got, tt.state)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"fleet", "--store", url, "breaker", "payments", "force", "sideways"}, &out, &errb); code != 2 {
		t.Errorf("bad force: exit %d, want 2", code)
	}
}
