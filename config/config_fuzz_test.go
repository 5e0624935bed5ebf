package config_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	f.Add([]byte(yamlBomb()))
	f.Add([]byte("base: &b {timeout: 1s}\nhandlers: {h: {<<: *b}}"))
	env := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data, env, nil)
		if err != nil {
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml:") || len(line) == len("fuzz.yaml:") {
					t.Fatalf("problem %q does not name the file\nwhole error:\n%v", line, err)
				}
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

// yamlBomb is a file whose aliases of aliases expand to nine to the tenth
// values.
func yamlBomb() string {
	bomb, prev := "handlers: {h: {dlq: {}}}\nx0: &x0 [a, a, a, a, a, a, a, a, a]\n", "x0"
	for i := 1; i < 10; i++ {
		n := "x" + strconv.Itoa(i)
		bomb += n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", ") + "]\n"
		prev = n
	}
	return bomb
}

// TestHostileFilesBounded loads files built to exhaust a loader: a YAML
// bomb, nesting past yaml.v3's depth limit (flow and block), a megabyte
// value, a syntax error below a megabyte of valid lines. Each is an error
// that names the file and a line, and a problem quoting the long value
// stays short. (Too large to be FuzzParse seeds: mutating them would slow
// every fuzzing run.)
func TestHostileFilesBounded(t *testing.T) {
	var big strings.Builder
	big.WriteString("x:\n")
	for range 20000 {
		big.WriteString("  - [a, b, c, d]\n")
	}
	big.WriteString(" bad: [\n")
	for _, tt := range []struct{ name, file, want string }{
		{"bomb", yamlBomb(), "fuzz.yaml:1: the file's aliases (*name) expand it to more than 100000 values"},
		{"deep flow", "handlers: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "fuzz.yaml:1: invalid YAML: exceeded max depth"},
		{"deep mapping", "handlers: " + strings.Repeat("{a: ", 20000) + "1" + strings.Repeat("}", 20000), "fuzz.yaml:1: invalid YAML: exceeded max depth"},
		{"long value", "handlers: {h: {timeout: " + strings.Repeat("9", 1<<20) + "}}", `fuzz.yaml:1: handlers.h.timeout: "999`},
		{"error at the end", big.String(), "fuzz.yaml:20002: invalid YAML:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("fuzz.yaml", []byte(tt.file), nil, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || len(err.Error()) > 1000 {
				t.Fatalf("got %.300v (%d bytes)\nwant prefix %s, at most 1000 bytes", err, len(fmt.Sprint(err)), tt.want)
			}
		})
	}
}
