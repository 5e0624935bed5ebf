package archtest

import (
	"errors"
	"testing"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
	"github.com/levee-dev/levee/validate"
)

// TestInvalidConfigIsShared: every core package's constructor rejects an
// invalid setting with an error that matches both the package's own
// ErrInvalidConfig and levee.ErrInvalidConfig.
func TestInvalidConfigIsShared(t *testing.T) {
	tests := []struct {
		name string
		own  error
		call func() error
	}{
		{"batch", batch.ErrInvalidConfig, func() error { _, err := batch.New(nil); return err }},
		{"breaker", breaker.ErrInvalidConfig, func() error { _, err := breaker.New(breaker.WithOpenFor(-1)); return err }},
		{"config", config.ErrInvalidConfig, func() error { _, err := config.Parse("levee.yaml", []byte("handlers: [a]\n"), nil, nil); return err }},
		{"dedup", dedup.ErrInvalidConfig, func() error { _, err := dedup.New(dedup.WithLease(0)); return err }},
		{"dlq", dlq.ErrInvalidConfig, func() error { _, err := dlq.New(nil); return err }},
		{"dlqops", dlqops.ErrInvalidConfig, func() error { _, err := dlqops.NewMonitor(nil); return err }},
		{"middleware", middleware.ErrInvalidConfig, func() error { _, err := middleware.NewTimeout(0); return err }},
		{"priority", priority.ErrInvalidConfig, func() error { _, err := priority.NewScheduler(priority.WithSlots(-1)); return err }},
		{"ratelimit", ratelimit.ErrInvalidConfig, func() error { _, err := ratelimit.New(ratelimit.WithRate(-1)); return err }},
		{"tracing", tracing.ErrInvalidConfig, func() error { _, err := tracing.New(tracing.WithSystem(" ")); return err }},
		{"validate", validate.ErrInvalidConfig, func() error {
			_, err := validate.Compile(map[string][]byte{"t": []byte("{")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.own) || !errors.Is(err, levee.ErrInvalidConfig) {
				t.Fatalf("got %v, want an error matching %v and levee.ErrInvalidConfig", err, tt.own)
			}
		})
	}
}
