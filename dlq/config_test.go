package dlq_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/config"
)

func decode(t *testing.T, yml string) (dlq.Config, error) {
	t.Helper()
	doc, err := config.Parse("levee.yaml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		DLQ dlq.Config `yaml:"dlq"`
	}
	err = doc.Decode(&s)
	return s.DLQ, err
}

func TestConfigDecode(t *testing.T) {
	c, err := decode(t, `
dlq:
  topic: payments.dlq
  consumer_group: billing
  max_hold: 30s
  retry: {max_attempts: 7, initial: 50ms, max: 5s, multiplier: 3, max_elapsed: 1m}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := dlq.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 3, MaxAttempts: 7, MaxElapsed: time.Minute}
	if got := c.Retry.Backoff(); got != want {
		t.Errorf("backoff: got %+v, want %+v", got, want)
	}
	r, err := dlq.New(newRecPublisher(), c.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Label(), "topic=payments.dlq attempts=7 backoff=50ms..5s x3 max_elapsed=1m0s max_hold=30s"; got != want {
		t.Errorf("label: got %q, want %q", got, want)
	}
	if r.Backoff() != want {
		t.Errorf("router backoff: got %+v, want %+v", r.Backoff(), want)
	}
	// empty section: defaults
	if got := (dlq.Config{}).Retry.Backoff(); got != dlq.DefaultBackoff() {
		t.Errorf("defaults: got %+v, want %+v", got, dlq.DefaultBackoff())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		yml  string
		want string // substring: file:line: path: message
	}{
		{"dlq:\n  retry:\n    max_attempts: -1\n", "levee.yaml:3: dlq.retry.max_attempts: must be >= 1"},
		{"dlq:\n  retry:\n    initial: 1s\n    max: 10ms\n", "levee.yaml:4: dlq.retry.max: must be >= initial"},
		{"dlq:\n  retry: {multiplier: 0.5}\n", "dlq.retry.multiplier: must be a finite number >= 1"},
		{"dlq:\n  max_error_length: 3\n", "levee.yaml:2: dlq.max_error_length: must be >= 16"},
		{"dlq:\n  retry: {max_atempts: 3}\n", `unknown key "max_atempts"`},
		{"dlq:\n  max_hold: soon\n", "dlq.max_hold"},
	}
	for _, tt := range tests {
		_, err := decode(t, tt.yml)
		if err == nil || !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.yml, err, tt.want)
		}
	}
}
