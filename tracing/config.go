package tracing

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/propagation"

	lconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the YAML form of a Tracer's (and a Metrics') settings. The
// tracer and meter providers are not configuration: they come from code
// (WithTracerProvider, WithMeterProvider), and without them everything is
// off. The zero Config is valid and means the defaults.
//
//	tracing:
//	  system: rabbitmq          # messaging.system; adapters set it
//	  consumer_group: orders    # messaging.consumer.group.name
//	  propagators: [tracecontext, baggage]
type Config struct {
	// System is the messaging.system attribute; see WithSystem.
	System string `yaml:"system"`
	// ConsumerGroup is the messaging.consumer.group.name attribute; see
	// WithConsumerGroup.
	ConsumerGroup string `yaml:"consumer_group"`
	// Propagators names the propagators, in order: "tracecontext" (W3C
	// traceparent and tracestate) and "baggage" (W3C baggage). Empty means
	// both, the default; see WithPropagators.
	Propagators []string `yaml:"propagators"`
}

// Validate reports the first invalid field, pointing at its key. It runs
// the checks New runs.
func (c Config) Validate() error {
	if err := validateName("system", c.System); err != nil {
		return lconfig.Field("system", err)
	}
	if err := validateName("consumer group", c.ConsumerGroup); err != nil {
		return lconfig.Field("consumer_group", err)
	}
	if _, err := parsePropagators(c.Propagators); err != nil {
		return lconfig.Field("propagators", err)
	}
	return nil
}

// Options returns the options c describes, to pass to New or NewMetrics
// together with the providers. Empty fields yield no option, so c.Options()
// placed after an adapter's WithSystem only overrides it when system is
// set. An invalid c yields an option that makes New return the error
// Validate reports.
func (c Config) Options() []Option {
	var opts []Option
	if c.System != "" {
		opts = append(opts, WithSystem(c.System))
	}
	if c.ConsumerGroup != "" {
		opts = append(opts, WithConsumerGroup(c.ConsumerGroup))
	}
	if len(c.Propagators) == 0 {
		return opts
	}
	p, err := parsePropagators(c.Propagators)
	if err != nil {
		return append(opts, withError(err))
	}
	return append(opts, WithPropagators(p))
}

// parsePropagators returns the composite propagator for names
// ("tracecontext", "baggage"; case-insensitive, each at most once). No names
// means DefaultPropagator. An unknown or repeated name is an error wrapping
// ErrInvalidConfig.
func parsePropagators(names []string) (propagation.TextMapPropagator, error) {
	if len(names) == 0 {
		return DefaultPropagator(), nil
	}
	seen := map[string]bool{}
	ps := make([]propagation.TextMapPropagator, 0, len(names))
	for _, n := range names {
		key := strings.ToLower(strings.TrimSpace(n))
		if seen[key] {
			return nil, fmt.Errorf("%w: propagator %q listed twice", ErrInvalidConfig, n)
		}
		seen[key] = true
		switch key {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		default:
			return nil, fmt.Errorf("%w: unknown propagator %q (want tracecontext or baggage)", ErrInvalidConfig, n)
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...), nil
}
