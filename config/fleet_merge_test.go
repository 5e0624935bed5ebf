package config_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetAndLocalLimitAreOneLimiter: a handler with a ratelimit section
// and a fleet ratelimit (no local_rate) got two limiters, both named after
// the handler: every admitted message recorded two samples of
// levee.ratelimit.wait.duration (each a part of its wait), and a fleet
// token taken for a message the local limit then refused was not given
// back (docs/FLEET.md says it is). The fleet limit is now the handler's
// limiter's (ratelimit.WithFleet): one sample per message, and the
// refused message's fleet token goes back.
func TestFleetAndLocalLimitAreOneLimiter(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		y := "handlers:\n  h:\n    ratelimit: {rate: 1/s, burst: 3, mode: reject}\n    fleet: {ratelimit: {rate: 1000/s, burst: 100}}\n"
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{FleetStore: fleet.NewMemStore(), MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		admitted, refused := 0, 0
		for range 10 {
			_, err := h(message.NewMessage("m", nil))
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, ratelimit.ErrLimited):
				refused++
			default:
				t.Fatalf("message: %v", err)
			}
			testkit.Advance(0)
		}
		if admitted == 0 || refused == 0 {
			t.Fatalf("admitted %d, refused %d: want both", admitted, refused)
		}
		n, _ := points(t, reader, attribute.Key("limiter"))
		if got := n["levee.ratelimit.wait.duration h"]; got != int64(admitted) {
			t.Errorf("levee.ratelimit.wait.duration{limiter=h}: %d samples for %d admitted messages, want one each", got, admitted)
		}
		l, ok := a.Limiter("h")
		if !ok {
			t.Fatal("no limiter for h")
		}
		// The fleet leased its first tokens; those of the refused messages
		// came back, so the replica holds the lease less the admitted ones.
		if held, leased := l.FleetHeld(), n["levee.fleet.leased"]; held != leased-int64(admitted) {
			t.Errorf("the handler's limiter holds %d fleet tokens, want %d leased - %d admitted (refused messages give theirs back)", held, leased, admitted)
		}
	})
}

// TestFleetLocalRateIsALimiterOfItsOwnName: with local_rate the fleet
// limit is a limiter of its own beside the handler's, and both were named
// after the handler: every admitted message recorded two samples of
// levee.ratelimit.wait.duration{limiter=h}, and levee.ratelimit.limit
// showed one of the two rates under one name. The fleet's limiter is now
// named h/fleet (config.FleetLimiterName); a handler whose fleet limiter
// is its only one (h2: no ratelimit section) keeps the handler's name.
func TestFleetLocalRateIsALimiterOfItsOwnName(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		y := "handlers:\n  h:\n    ratelimit: {rate: 1000/s, burst: 100}\n    fleet: {ratelimit: {rate: 500/s, burst: 100, local_rate: 200/s}}\n" +
			"  h2:\n    fleet: {ratelimit: {rate: 500/s, burst: 100, local_rate: 300/s}}\n"
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{FleetStore: fleet.NewMemStore(), MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		const sent = 7
		for _, name := range []string{"h", "h2"} {
			h := a.Stack(name).Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			for range sent {
				if _, err := h(message.NewMessage("m", nil)); err != nil {
					t.Fatalf("message: %v", err)
				}
			}
		}
		fleetName := config.FleetLimiterName("h")
		n, _ := points(t, reader, attribute.Key("limiter"))
		for _, name := range []string{"h", fleetName, "h2"} {
			if got := n["levee.ratelimit.wait.duration "+name]; got != sent {
				t.Errorf("levee.ratelimit.wait.duration{limiter=%s}: %d samples for %d messages, want one each", name, got, sent)
			}
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		rates := map[string]float64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "levee.ratelimit.limit" {
					for _, p := range g.DataPoints {
						v, _ := p.Attributes.Value("limiter")
						rates[v.AsString()] = p.Value
					}
				}
			}
		}
		if want := map[string]float64{"h": 1000, fleetName: 200, "h2": 300}; !maps.Equal(rates, want) {
			t.Errorf("levee.ratelimit.limit by limiter: %v, want %v", rates, want)
		}
	})
}
