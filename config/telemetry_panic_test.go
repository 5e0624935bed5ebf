package config_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/levee-dev/levee/config"
)

// TestMetricsCountPanicsWithoutRecover: a handler built from YAML with
// metrics, a breaker, a priority scheduler, a rate limit and a timeout but
// no recover and no dlq panics on each of three messages; the router
// recovers each panic and Nacks (Watermill's router does; here a recover
// around the call). The breaker counts the panics as failures and opens,
// and levee.handler.messages shows three nacked deliveries of class panic,
// each with a duration. Before, the metrics slot recorded none of them: a
// breaker tripped on a handler with no failure on the dashboard. The
// slot, the paused count and the scheduler's gauges are back to 0.
func TestMetricsCountPanicsWithoutRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		y := `schedulers:
  s: {slots: 1}
handlers:
  h:
    metrics: true
    breaker: {consecutive_failures: 2}
    priority: {scheduler: s}
    ratelimit: {rate: 100/s}
    timeout: 1s
`
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Close() }()
		calls := 0
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
			calls++
			panic("bad order")
		})
		panics := 0
		for range 3 {
			func() {
				defer func() {
					if recover() != nil {
						panics++
					}
				}()
				_, _ = h(message.NewMessage("m", nil))
			}()
		}
		if calls != 3 || panics != 3 {
			t.Fatalf("%d handler calls and %d panics, want 3 each", calls, panics)
		}
		got, _ := points(t, reader, "outcome", "class", "to")
		for k, w := range map[string]int64{
			"levee.handler.messages nacked panic": 3,
			"levee.handler.duration nacked panic": 3,
			"levee.breaker.transitions open":      2, // closed -> open, then half-open -> open at the probe
			"levee.breaker.paused":                0,
			"levee.priority.slots.in_use":         0,
			"levee.priority.queue.depth":          0,
		} {
			if got[k] != w {
				t.Errorf("%s: got %d, want %d", k, got[k], w)
			}
		}
		for _, k := range []string{"levee.handler.messages acked", "levee.handler.messages nacked transient"} {
			if got[k] != 0 {
				t.Errorf("%s: got %d, want 0", k, got[k])
			}
		}
	})
}
