package config_test

import (
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/config"
)

// FuzzParse feeds arbitrary YAML through every section's decoder and
// validation: a bad file gets an error, never a panic, and a file that
// parses describes its handlers' stacks without panicking either.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../examples/orders/levee.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"handlers: {h: {dlq: {topic: t.dlq, retry: {max_attempts: 3}}, ratelimit: {rate: 10/s}}}",
		"handlers: {h: {breaker: {consecutive_failures: 3, drain: {window: 1s, start: 10%}}}}",
		"handlers: {h: {batch: {max_size: 10, max_wait: 1s}, priority: {scheduler: s}}}\nschedulers: {s: {slots: 2}}",
		"transport: {kind: amqp, amqp: {url: 'amqp://x'}, concurrency: 8}",
		"store: {kind: redis, url: 'redis://127.0.0.1:6379/0', prefix: a:b}",
		"handlers: {h: {dlq: {attempts: shared}}}\nstore: {kind: postgres, url: 'postgres://x'}",
		"handlers: {h: {ratelimit: {rate: -1/s, key: 'metadata:'}}}",
	} {
		f.Add([]byte(s))
	}
	env := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data, env, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
	})
}

// FuzzBuild builds every file Parse accepts: Build returns an error (a
// section needing a store the deps lack, a hold past the deadline) or
// stacks for every handler, never a panic, and Close releases what it
// built (TestMain checks for leaked goroutines).
func FuzzBuild(f *testing.F) {
	if b, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(b, int64(0))
	}
	for _, s := range []string{
		"handlers: {h: {dlq: {topic: t.dlq, retry: {max_attempts: 3}}, ratelimit: {rate: 10/s, burst: 2}, timeout: 1s}}",
		"handlers: {h: {breaker: {consecutive_failures: 3, drain: {window: 1s, start: 10%}}, recover: true}}",
		"handlers: {h: {batch: {max_size: 10, max_wait: 1s}, priority: {scheduler: s}}}\nschedulers: {s: {slots: 2}}",
		"handlers: {h: {ratelimit: {rate: 0/s, key: {metadata: k}, per_key: {rate: 1e-9/s, max_keys: 2, overrides: {a: {rate: 1/s}}}}}}",
		"handlers: {h: {ratelimit: {rate: 5/s, adaptive: {min: 1/s, max: 10/s, target_latency: 10ms, decrease: 50%}}}}",
		"handlers: {h: {dedup: {key: {json_pointer: /id}, window: 1h}}}",
		"handlers: {h: {dlq: {attempts: shared}}}\nstore: {kind: redis, url: 'redis://127.0.0.1:6379/0'}",
		"handlers: {a: {breaker: {shared: b}}, c: {breaker: {shared: b}}}\nbreakers: {b: {failure_ratio: 50%}}",
		"handlers: {h: {ratelimit: {rate: 1e308/s, burst: 2147483647, max_wait: 2562047h}}}",
		"handlers: {h: {dedup: {max_keys: 9223372036854775807}, ratelimit: {rate: 1/s, per_key: {rate: 1/s, max_keys: 9223372036854775807}}}}",
	} {
		f.Add([]byte(s), int64(time.Second))
	}
	env := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte, maxHold int64) {
		cfg, err := config.Parse("fuzz.yaml", data, env, nil)
		if err != nil {
			return
		}
		_ = cfg.Describe()
		deps := config.Deps{Publisher: discard{}, MaxHold: time.Duration(max(maxHold, 0)), Logger: watermill.NopLogger{}}
		a, err := config.Build(cfg, deps)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, name := range cfg.HandlerNames() {
			if a.Stack(name) == nil {
				t.Fatalf("handler %q built without a stack", name)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}
