package config_test

import (
	"os"
	"testing"

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
