package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
)

type classed string

func (c classed) Error() string      { return "err " + string(c) }
func (c classed) ErrorClass() string { return string(c) }

func TestErrorClassOfChain(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("x"), string(levee.ClassTransient)},
		{"direct", classed("permanent"), "permanent"},
		{"wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", classed("validation"))), "validation"},
		{"joined", errors.Join(errors.New("x"), classed("panic")), "panic"},
		{"empty class", classed(""), string(levee.ClassTransient)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := telemetry.ErrorClass(tt.err); got != tt.want {
				t.Errorf("ErrorClass(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestWithOutcomeIsShared(t *testing.T) {
	ctx, o := telemetry.WithOutcome(context.Background())
	ctx2, o2 := telemetry.WithOutcome(ctx)
	if ctx2 != ctx || o2 != o {
		t.Fatalf("WithOutcome on a context with an Outcome made a new one")
	}
	if _, ok := o.DeadLettered(); ok {
		t.Fatalf("new Outcome reports dead-lettered")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			telemetry.MarkDeadLettered(ctx2, string(levee.ClassExhausted), nil)
		}()
	}
	wg.Wait()
	if class, ok := o.DeadLettered(); !ok || class != string(levee.ClassExhausted) {
		t.Errorf("DeadLettered() = %q, %v; want %q, true", class, ok, string(levee.ClassExhausted))
	}
	if telemetry.OutcomeFrom(context.Background()) != nil {
		t.Errorf("OutcomeFrom(empty context) != nil")
	}
	telemetry.MarkDeadLettered(context.Background(), "permanent", nil) // no Outcome: no-op, no panic
}
