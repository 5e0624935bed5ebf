package tracing

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
)

// ErrInvalidConfig is wrapped by every error New and NewMetrics return for
// an invalid option.
// errors.Is matches it with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/tracing: invalid configuration")

// Option configures a Tracer or a Metrics. Options that do not concern the
// type being built are ignored by it (a Metrics ignores WithPropagators).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	prop   propagation.TextMapPropagator
	system string
	group  string
	err    error
}

func newConfig(opts []Option) (config, error) {
	c := config{}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.err != nil {
		return c, c.err
	}
	if c.prop == nil {
		c.prop = DefaultPropagator()
	}
	if err := validateName("system", c.system); err != nil {
		return c, err
	}
	if err := validateName("consumer group", c.group); err != nil {
		return c, err
	}
	return c, nil
}

// maxNameLen bounds the system and consumer group names, which become
// attribute values on every span.
const maxNameLen = 255

func validateName(what, s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%w: %s is %d bytes long, at most %d", ErrInvalidConfig, what, len(s), maxNameLen)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%w: %s %q has leading or trailing space", ErrInvalidConfig, what, s)
	}
	return nil
}

// DefaultPropagator returns the propagator a Tracer uses unless
// WithPropagators says otherwise: W3C TraceContext and W3C Baggage. It does
// not depend on otel.GetTextMapPropagator, whose default propagates nothing.
func DefaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// WithTracerProvider sets the provider of the consumer, producer and replay
// spans. The default, nil, turns tracing off: the Tracer's middleware and
// publisher decorator then return what they wrap unchanged and cost nothing.
// Pass otel.GetTracerProvider() to use the global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the provider of the metric instruments. The
// default, nil, turns metrics off: the Metrics middleware returns the
// handler unchanged, and the Tracer counts invalid trace contexts nowhere.
// Pass otel.GetMeterProvider() to use the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithPropagators sets the propagator used to extract the trace context and
// baggage from message metadata and inject them into produced messages. The
// default, also used when p is nil, is DefaultPropagator (W3C TraceContext
// and Baggage), whatever the global propagator is.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithSystem sets the messaging.system span attribute, the transport's
// semantic-convention name ("rabbitmq", "kafka", "nats", "redis",
// "postgresql", "gochannel"). Adapters set it per transport. The default,
// "", leaves the attribute out. It must be at most 255 bytes, without
// leading or trailing space.
func WithSystem(system string) Option {
	return optionFunc(func(c *config) { c.system = system })
}

// WithConsumerGroup sets the messaging.consumer.group.name span attribute
// (Kafka consumer group, RabbitMQ queue, NATS durable). The default, "",
// leaves it out. Same limits as WithSystem.
func WithConsumerGroup(group string) Option {
	return optionFunc(func(c *config) { c.group = group })
}

func withError(err error) Option {
	return optionFunc(func(c *config) {
		if c.err == nil {
			c.err = err
		}
	})
}
