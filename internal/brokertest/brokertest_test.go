package brokertest

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestAddressesFromEnvironment(t *testing.T) {
	for _, k := range []string{"LEVEE_TEST_AMQP_URL", "LEVEE_AMQP_URL", "LEVEE_TEST_NATS_URL", "LEVEE_TEST_REDIS_ADDR",
		"LEVEE_TEST_REDIS_URL", "LEVEE_REDIS_URL", "LEVEE_TEST_POSTGRES_URL", "LEVEE_PG_URL"} {
		t.Setenv(k, "")
	}
	defaults := map[string][2]string{
		"amqp":     {AMQPURL(), DefaultAMQPURL},
		"nats":     {NATSURL(), DefaultNATSURL},
		"redis":    {RedisAddr(), DefaultRedisAddr},
		"redisurl": {RedisURL(), "redis://127.0.0.1:6379/0"},
		"postgres": {PostgresURL(), DefaultPostgresURL},
	}
	for name, gw := range defaults {
		if gw[0] != gw[1] {
			t.Errorf("%s: got %q, want %q", name, gw[0], gw[1])
		}
	}
	t.Setenv("LEVEE_PG_URL", "postgres://legacy/db")
	if got := PostgresURL(); got != "postgres://legacy/db" {
		t.Errorf("legacy variable: got %q", got)
	}
	t.Setenv("LEVEE_TEST_POSTGRES_URL", "postgres://new/db")
	if got := PostgresURL(); got != "postgres://new/db" {
		t.Errorf("LEVEE_TEST_ variable first: got %q", got)
	}
	t.Setenv("LEVEE_TEST_REDIS_ADDR", "10.0.0.1:7000")
	if got := RedisURL(); got != "redis://10.0.0.1:7000/0" {
		t.Errorf("redis url from addr: got %q", got)
	}
}

func TestName(t *testing.T) {
	a, b := Name("levee_test"), Name("levee_test")
	if a == b || !regexp.MustCompile(`^levee_test_[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("got %q and %q, want two distinct levee_test_<12 hex>", a, b)
	}
}

func TestFreshDropsAtCleanup(t *testing.T) {
	var dropped string
	var name string
	t.Run("inner", func(t *testing.T) {
		name = Fresh(t, "levee_x", func(n string) error { dropped = n; return nil })
		if dropped != "" {
			t.Fatal("dropped before the test ended")
		}
	})
	if dropped != name || !strings.HasPrefix(name, "levee_x_") {
		t.Fatalf("got dropped %q for name %q", dropped, name)
	}
}

func TestSkipIfDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	t.Run("up", func(t *testing.T) {
		SkipIfDown(t, "redis://"+addr+"/0")
	})
	_ = ln.Close()
	var skipped bool
	t.Run("down", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		SkipIfDown(t, addr)
	})
	if !skipped {
		t.Fatal("a closed port did not skip")
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	_ = ln.Close()
}
