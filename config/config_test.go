package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/testkit"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"broken yaml", "handlers:\n  a: b: c\n", "levee.yaml:2: invalid YAML: mapping values are not allowed"},
		// yaml.v3 names the enclosing block's line for these (1, 3, 2);
		// the error is put where the problem is.
		{"bad indent", "handlers:\n  payments:\n    dlq:\n   retry: {max_attempts: 3}\n", "levee.yaml:4: invalid YAML: did not find expected key"},
		{"unclosed flow mapping", "handlers:\n  payments:\n    recover: true\n    dlq: {topic: x, retry: {max_attempts: 3}\n  other:\n    recover: true\n", "levee.yaml:4: invalid YAML: did not find expected ',' or '}'"},
		{"unquoted variable in a flow mapping", "console:\n  users:\n    - {name: a, password: ${P}, role: admin}\n", `levee.yaml:3: invalid YAML: did not find expected ',' or '}' (a ${VAR} inside {...} must be quoted: "${VAR}")`},
		// A valid multi-line value before the fault is not taken for it.
		{"multi-line string before an unclosed quote", "handlers:\n  h:\n    dlq:\n      topic: \"a\n        b\"\n    timeout: 1s\n  k:\n    dlq:\n      topic: \"unclosed\n", "levee.yaml:9: invalid YAML: found unexpected end of stream"},
		{"multi-line flow mapping before an unquoted variable", "handlers:\n  h:\n    dlq: {\n      topic: x,\n      retry: {max_attempts: 3}\n    }\n  g:\n    dlq: {topic: ${X}}\n", "levee.yaml:8: invalid YAML: did not find expected ',' or '}' (a ${VAR}"},
		{"second document", "handlers: {h: {timeout: 1s}}\n---\nhandlers: {h: {timeout: -1s}}\n", "levee.yaml:3: a second YAML document"},
		{"tab indent", "handlers:\n\tpayments: {}\n", "levee.yaml:2: invalid YAML: found character that cannot start any token (a tab in the indentation: YAML indents with spaces only)"},
		{"tab after spaces", "handlers:\n  payments:\n  \trecover: true\n", "levee.yaml:3: invalid YAML: found character that cannot start any token (a tab in the indentation: YAML indents with spaces only)"},
		{"top level not a mapping", "- a\n- b\n", "levee.yaml:1: the top level must be a mapping"},
		{"unknown top key", "handlers: {}\nhandelrs: {}\n", `levee.yaml:2: handelrs: unknown key "handelrs"`},
		{"unknown handler key", "handlers:\n  payments:\n    retry: {}\n", `levee.yaml:3: handlers.payments.retry: unknown key "retry"`},
		{"wrong type", "handlers:\n  payments:\n    recover: maybe\n", `levee.yaml:3: handlers.payments.recover: "maybe" is not a boolean`},
		{"handlers not a map", "handlers: [a]\n", "levee.yaml:1: handlers: expected a mapping of keys, got a list"},
		{"bad duration", "handlers:\n  payments:\n    timeout: 3x\n", `levee.yaml:3: handlers.payments.timeout: "3x" is not a duration`},
		{"negative duration", "handlers:\n  payments:\n    timeout: -5s\n", `levee.yaml:3: handlers.payments.timeout: "-5s" is negative`},
		{"zero timeout", "handlers:\n  payments:\n    timeout: 0s\n", "levee.yaml:3: handlers.payments.timeout: 0s is not a valid timeout"},
		{"empty timeout", "handlers:\n  payments:\n    timeout: null\n", "levee.yaml:3: handlers.payments.timeout: is empty; set a duration"},
		{"missing env", "handlers:\n  payments:\n    timeout: ${PAY_TIMEOUT}\n", "levee.yaml:3: handlers.payments.timeout: environment variable PAY_TIMEOUT is not set"},
		{"bad env name", "handlers:\n  payments:\n    timeout: ${1X}\n", `levee.yaml:3: handlers.payments.timeout: "1X" is not a valid variable name`},
		{"unterminated env", "handlers:\n  payments:\n    timeout: ${X\n", "levee.yaml:3: handlers.payments.timeout: unterminated ${"},
		{"duplicate key", "handlers:\n  payments:\n    timeout: 1s\n    timeout: 2s\n", "levee.yaml:4: handlers.payments.timeout: duplicate key"},
		{"section mapping instead of scalar", "handlers:\n  payments:\n    timeout: {a: 1}\n", "levee.yaml:3: handlers.payments.timeout: expected a single value, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), env(nil), nil)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got  %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestConfigEnvExpansion(t *testing.T) {
	y := "handlers:\n  a:\n    timeout: ${A_TIMEOUT}\n  b:\n    timeout: ${B_TIMEOUT:-750ms}\n  c:\n    timeout: ${C_TIMEOUT:-1s}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), env(map[string]string{"A_TIMEOUT": "2s", "C_TIMEOUT": "3s"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Describe()
	for _, want := range []string{"handler a:\n  1. timeout 2s", "handler b:\n  1. timeout 750ms", "handler c:\n  1. timeout 3s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("Describe() = %q, missing %q", got, want)
		}
	}
}

func TestConfigEmptyAndNull(t *testing.T) {
	for _, y := range []string{"", "# only a comment\n", "handlers:\n", "handlers:\n  payments:\n"} {
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		for _, n := range cfg.HandlerNames() {
			if d := cfg.Handler(n).Describe(); d != "" {
				t.Fatalf("%q: handler %s has stack %q, want none", y, n, d)
			}
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "levee.yaml")
	if err := os.WriteFile(path, []byte("handlers:\n  p:\n    timeout: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":3: handlers.p.timeout:") {
		t.Fatalf("got %v, want an error at %s:3", err, path)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, config.ErrInvalidConfig) {
		t.Fatalf("missing file: got %v, want ErrInvalidConfig", err)
	}
}

func TestApplyRejectsUnknownHandler(t *testing.T) {
	h := testkit.New(t)
	h.Handle("payments", "payments", func(*message.Message) error { return nil })
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  paymnets:\n    recover: true\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Apply(h.Router, cfg, config.Deps{})
	if err == nil || !strings.Contains(err.Error(), `did you mean "payments" for "paymnets"?`) || !strings.Contains(err.Error(), "router handlers: payments") {
		t.Fatalf("got %v, want an error naming paymnets and the router's handlers", err)
	}
}

// Recover and timeout work end to end from YAML on a real router: a panic is
// Nacked (and redelivered) instead of crashing, and a slow attempt is cut by
// the timeout while the other handler is untouched.
func TestApplyEndToEnd(t *testing.T) {
	h := testkit.New(t)
	var (
		mu           sync.Mutex
		paymentCalls int
		sawDeadline  bool
	)
	h.Handle("payments", "payments", func(msg *message.Message) error {
		mu.Lock()
		paymentCalls++
		first := paymentCalls == 1
		mu.Unlock()
		if first {
			panic("card processor exploded")
		}
		_, ok := msg.Context().Deadline()
		mu.Lock()
		sawDeadline = ok
		mu.Unlock()
		return nil
	})
	h.Handle("plain", "plain", func(msg *message.Message) error {
		if _, ok := msg.Context().Deadline(); ok {
			t.Error("unconfigured handler got a deadline")
		}
		return nil
	})
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  payments:\n    recover: true\n    timeout: 2s\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := config.Apply(h.Router, cfg, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer applied.Close()
	if applied.Stack("payments").Len() != 2 {
		t.Fatalf("payments stack: %q", applied.Stack("payments").Describe())
	}
	h.Start()
	h.PublishN("payments", 1, nil)
	h.PublishN("plain", 1, nil)
	c := h.WaitSettled(2, 5*time.Second)
	if c.Nacked != 1 || c.Acked != 2 {
		t.Fatalf("got %s, want 1 nack (the panic) and 2 acks", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawDeadline {
		t.Fatal("payments attempt had no deadline from timeout")
	}
}

// A file whose aliases multiply (a YAML bomb: each handler an alias of one
// with many keyed limits, or aliases of aliases) is refused at once
// instead of decoded for minutes; a few anchors are fine.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("handlers:\n  h0: &H\n    ratelimit:\n      rate: 10/s\n      key: {metadata: k}\n      per_key:\n        rate: 1/s\n        overrides:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "          k%d: {rate: 2/s}\n", i)
	}
	for i := 1; i < 300; i++ {
		fmt.Fprintf(&b, "  h%d: *H\n", i)
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	for name, y := range map[string]string{"handlers": b.String(), "nested": bomb} {
		_, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "aliases") {
			t.Errorf("%s: got %v, want the aliases refused", name, err)
		}
	}
	ok := "schedulers:\n  s: &S {slots: 4}\n  t: *S\nhandlers:\n  a: &A {timeout: 1s}\n  b: *A\n"
	if _, err := config.Parse("levee.yaml", []byte(ok), nil, nil); err != nil {
		t.Fatalf("a few anchors: %v", err)
	}
}
