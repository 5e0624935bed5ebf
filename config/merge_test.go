package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/levee-dev/levee/config"
)

// YAML merge keys (<<: *anchor) give several handlers one set of keys,
// each overriding what it sets itself, as YAML defines them. They were
// refused as `unknown key "<<"`.
func TestMergeKeys(t *testing.T) {
	y := `handlers:
  payments: &base
    recover: true
    timeout: 1s
    dlq: {retry: {max_attempts: 3}}
  refunds:
    <<: *base
    timeout: 3s
  both:
    <<: [*base, {metrics: true}]
`
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Describe()
	for _, want := range []string{"handler refunds:\n  1. recover\n  2. dlq topic=<topic>.dlq attempts=3", "timeout 3s", "handler both:\n  1. metrics\n  2. recover\n  3. dlq topic=<topic>.dlq attempts=3"} {
		if !strings.Contains(d, want) {
			t.Errorf("stacks lack %q:\n%s", want, d)
		}
	}
	if strings.Count(d, "timeout 1s") != 2 {
		t.Errorf("want payments and both at timeout 1s, refunds overriding it:\n%s", d)
	}
	// A merged value is checked as any other, at the line it is written.
	bad := "handlers:\n  a: &a\n    timout: 1s\n  b:\n    <<: *a\n"
	if _, err := config.Parse("levee.yaml", []byte(bad), nil, nil); !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "levee.yaml:3: handlers.b.timout") {
		t.Errorf("bad merged key: got %v", err)
	}
	// An empty list merges nothing.
	if _, err := config.Parse("levee.yaml", []byte("handlers:\n  a:\n    <<: []\n    timeout: 1s\n"), nil, nil); err != nil {
		t.Errorf("merge of an empty list: %v", err)
	}
	// What is merged must be a mapping.
	scalar := "handlers:\n  a:\n    <<: 5\n"
	if _, err := config.Parse("levee.yaml", []byte(scalar), nil, nil); !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "levee.yaml:3: handlers.a.<<") || !strings.Contains(err.Error(), "mapping") {
		t.Errorf("merge of a scalar: got %v", err)
	}
}

// A key that is a list, a mapping or null is refused, naming its line:
// `[a]: {...}` made a handler named "" and `~: {...}` one named "~".
func TestKeysArePlainNames(t *testing.T) {
	for y, want := range map[string]string{
		"handlers:\n  [a]: {timeout: 1s}\n":          "levee.yaml:2: handlers: a key must be a plain name, not a list",
		"handlers:\n  ? {a: 1}\n  : {timeout: 1s}\n": "levee.yaml:2: handlers: a key must be a plain name, not a mapping",
		"handlers:\n  ~: {timeout: 1s}\n":            "levee.yaml:2: handlers: a key must be a plain name, not null",
		// Variables are expanded in values only: the handler was named
		// "${NAME}" and Apply failed on a handler the router lacked.
		"handlers:\n  ${NAME}: {timeout: 1s}\n": `levee.yaml:2: handlers: a key must be a plain name, not one with a variable ("${NAME}"): variables are expanded in values only`,
		// A name with a line break or escape forged lines of the check's
		// report (a handler "x:\n  1. recover" printed a stack line).
		"handlers:\n  \"x:\\n  1. recover\": {timeout: 1s}\n": `levee.yaml:2: handlers: a key must be a plain name, not one with control characters ("x:\n  1. recover")`,
	} {
		_, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", y, err, want)
		}
	}
	if _, err := config.Parse("levee.yaml", []byte("handlers:\n  \"1\": {timeout: 1s}\n  2: {timeout: 1s}\n"), nil, nil); err != nil {
		t.Errorf("names that look like numbers: %v", err)
	}
}
