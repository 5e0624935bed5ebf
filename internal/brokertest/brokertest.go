// Package brokertest is the one integration-test helper for the servers
// Levee's tests run against on loopback: their addresses (from the
// environment, with the loopback defaults of the project's machines), a
// skip when a server is down, and a fresh name per test for a PostgreSQL
// schema, a Redis key prefix or a topic, dropped when the test ends.
//
// It imports only the standard library, so every module's tests can use
// it; dropping a schema or keys is the caller's, with its own client.
//
// Environment (the first set variable wins):
//
//	AMQP      LEVEE_TEST_AMQP_URL, LEVEE_AMQP_URL      amqp://guest:guest@127.0.0.1:5672/
//	NATS      LEVEE_TEST_NATS_URL                      nats://127.0.0.1:4222
//	Redis     LEVEE_TEST_REDIS_ADDR                    127.0.0.1:6379
//	          LEVEE_TEST_REDIS_URL, LEVEE_REDIS_URL    redis://<addr>/0
//	Postgres  LEVEE_TEST_POSTGRES_URL, LEVEE_PG_URL,
//	          LEVEE_POSTGRES_URL                       postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// The functions are safe for concurrent use.
package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// Loopback defaults.
const (
	DefaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultRedisAddr   = "127.0.0.1:6379"
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func env(def string, keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return def
}

// AMQPURL is the RabbitMQ URL.
func AMQPURL() string { return env(DefaultAMQPURL, "LEVEE_TEST_AMQP_URL", "LEVEE_AMQP_URL") }

// NATSURL is the NATS (JetStream) URL.
func NATSURL() string { return env(DefaultNATSURL, "LEVEE_TEST_NATS_URL") }

// RedisAddr is the Redis host:port.
func RedisAddr() string { return env(DefaultRedisAddr, "LEVEE_TEST_REDIS_ADDR") }

// RedisURL is the Redis URL (database 0 of RedisAddr by default).
func RedisURL() string {
	return env("redis://"+RedisAddr()+"/0", "LEVEE_TEST_REDIS_URL", "LEVEE_REDIS_URL")
}

// PostgresURL is the PostgreSQL URL.
func PostgresURL() string {
	return env(DefaultPostgresURL, "LEVEE_TEST_POSTGRES_URL", "LEVEE_PG_URL", "LEVEE_POSTGRES_URL")
}

// dialTimeout bounds the reachability check of SkipIfDown.
const dialTimeout = 2 * time.Second

// SkipIfDown skips the test when nothing accepts a TCP connection at
// target, a URL (its host and port) or a host:port.
func SkipIfDown(t testing.TB, target string) {
	t.Helper()
	addr := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		addr = u.Host
	}
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		t.Skipf("server at %s is down: %v", addr, err)
	}
	_ = conn.Close()
}

// Name returns prefix followed by "_" and 12 random hex digits: a name no
// other test or run uses, valid as a PostgreSQL identifier, a Redis key
// prefix and a topic on every transport when prefix is.
func Name(prefix string) string { return prefix + "_" + Suffix() }

// Suffix returns 12 random hex digits, to make several names of one test
// (a schema and a topic) share a unique part.
func Suffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fresh returns Name(prefix) and, when the test ends, calls drop with it
// (to drop the schema, delete the keys); a drop error fails the test.
func Fresh(t testing.TB, prefix string, drop func(name string) error) string {
	t.Helper()
	name := Name(prefix)
	t.Cleanup(func() {
		if err := drop(name); err != nil {
			t.Errorf("brokertest: cleanup of %s: %v", name, err)
		}
	})
	return name
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// private server a test starts (and may restart) itself.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
