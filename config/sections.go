package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// DefaultSections returns the handler-level sections Levee understands, one
// per concern. Each concern package owns its section's struct and
// validation; this list only wires them to slots.
func DefaultSections() []Section {
	return []Section{
		tracingSection(),
		metricsSection(),
		recoverSection(),
		timeoutSection(),
		dlqSection(),
		dedupSection(),
		breakerSection(),
		prioritySection(),
		ratelimitSection(),
		handlerSection("batch", batchLabel),
		fleetSection(),
	}
}

// recover: true adds Recover; recover: false (or absent) leaves it out.
func recoverSection() Section {
	return switchSection("recover", middleware.SlotRecover, func(BuildEnv) (message.HandlerMiddleware, error) {
		return middleware.Recover, nil
	})
}

// switchSection is a section whose value is a bool: true builds the
// middleware, false (or absent) leaves the slot empty.
func switchSection(key string, slot middleware.Slot, build func(BuildEnv) (message.HandlerMiddleware, error)) Section {
	return Section{
		Key:  key,
		Slot: slot,
		decode: func(raw iconfig.Raw) (any, error) {
			var on bool
			if err := raw.Decode(&on); err != nil {
				return nil, err
			}
			if !on {
				return nil, nil
			}
			return true, nil
		},
		label: func(any) string { return "" },
		build: func(_ any, b BuildEnv) (built, error) {
			mw, err := build(b)
			return built{mw: mw}, err
		},
	}
}

// timeout: 5s bounds one attempt.
func timeoutSection() Section {
	return Section{
		Key:  "timeout",
		Slot: middleware.SlotTimeout,
		decode: func(raw iconfig.Raw) (any, error) {
			if raw.IsNull() {
				return nil, raw.Errorf("is empty; set a duration (e.g. 5s) or remove the key")
			}
			var d time.Duration
			if err := raw.Decode(&d); err != nil {
				return nil, err
			}
			t, err := middleware.NewTimeout(d)
			if err != nil {
				return nil, raw.Errorf("%v is not a valid timeout: it must be positive", d)
			}
			return t, nil
		},
		label: func(v any) string { return v.(*middleware.Timeout).Duration().String() },
		build: func(v any, _ BuildEnv) (built, error) {
			return built{mw: v.(*middleware.Timeout).Middleware}, nil
		},
	}
}

// handlerSection returns a Section for a key that configures the handler
// itself (SlotHandler): decoded and validated with the file, read back with
// Value (Handler.Batch), and never added to the Stack.
func handlerSection[C any](key string, label func(C) string) Section {
	return newSection(key, SlotHandler, label, func(C, BuildEnv) (built, error) { return built{}, nil })
}

// batchLabel describes a batch section: the settings that were set.
func batchLabel(c batch.Config) string {
	var parts []string
	if c.MaxSize != nil {
		parts = append(parts, fmt.Sprintf("max_size=%d", *c.MaxSize))
	}
	if c.MaxBytes != nil {
		parts = append(parts, fmt.Sprintf("max_bytes=%d", *c.MaxBytes))
	}
	if c.MaxWait != nil {
		parts = append(parts, "max_wait="+c.MaxWait.String())
	}
	if c.MaxInFlight != nil {
		parts = append(parts, fmt.Sprintf("max_in_flight=%d", *c.MaxInFlight))
	}
	if c.MaxHold != nil {
		parts = append(parts, "max_hold="+c.MaxHold.String())
	}
	return strings.Join(parts, " ")
}

// breaker: a per-handler breaker, or {shared: name} for one of breakers:.
func breakerSection() Section {
	s := newBreakerSection()
	s.ref = func(v any) (string, string, string) { return "breakers", v.(breaker.Config).Shared, "shared" }
	return s
}

func newBreakerSection() Section {
	return newSection("breaker", middleware.SlotBreaker, breakerLabel,
		func(c breaker.Config, b BuildEnv) (built, error) {
			if c.Shared != "" {
				br, err := b.sharedBreaker(c.Shared)
				if err != nil {
					return built{}, err
				}
				if br.separate {
					// Its ramp waits in each handler's ratelimit slot.
					b.Also(middleware.SlotRateLimit, br.DrainMiddleware, "breaker-drain")
				}
				return built{mw: br.Middleware, instance: br.Breaker}, nil
			}
			br, err := breaker.New(breakerOptions(c, b.Handler, b.Deps)...)
			if err != nil {
				return built{}, err
			}
			if separateDrain(c) {
				b.Also(middleware.SlotRateLimit, br.DrainMiddleware, "breaker-drain")
			}
			return built{mw: br.Middleware, closer: br, instance: br}, nil
		})
}

// separateDrain reports whether a breaker built from c waits for its drain
// ramp in the ratelimit slot, inside priority, so priority decides who
// goes first while the backlog drains (canonical order, 7): with a drain
// and without a slow-call policy, which needs the wait inside the breaker
// or it would time the ramp. A shared breaker follows the same rule.
func separateDrain(c breaker.Config) bool { return c.Drain != nil && c.SlowCall == nil }

func breakerLabel(c breaker.Config) string {
	if c.Shared != "" {
		return "shared=" + c.Shared
	}
	// The trip policy and the drain's start are the breaker's own, New's
	// defaults filled in (a drain alone trips after 5 consecutive
	// failures, from 10%); the other keys are shown when set.
	e := c.Effective()
	var parts []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			parts = append(parts, fmt.Sprintf(format, args...))
		}
	}
	add(e.ConsecutiveFailures > 0, "consecutive_failures=%d", e.ConsecutiveFailures)
	add(e.FailureRatio > 0, "failure_ratio=%g min_requests=%d", e.FailureRatio, e.MinRequests)
	add(c.OpenFor > 0, "open_for=%s", c.OpenFor)
	add(c.HalfOpenProbes > 0, "half_open_probes=%d", c.HalfOpenProbes)
	add(c.MaxHold > 0, "max_hold=%s", c.MaxHold)
	if c.SlowCall != nil {
		add(true, "slow_call=%s/%g", c.SlowCall.Threshold, c.SlowCall.Ratio)
	}
	if d := e.Drain; d != nil {
		add(true, "drain=%s from %g%%", d.Window, d.Start*100)
		add(d.Rate > 0, "drain_rate=%s", iconfig.FormatRate(d.Rate))
	}
	return strings.Join(parts, " ")
}

// tracing: {system, consumer_group, propagators} adds the consumer span,
// and traces the dead-letter publishes of the handler's dlq section. With
// no TracerProvider in Deps it is a free pass-through.
func tracingSection() Section {
	return newSection("tracing", middleware.SlotTracing, func(c tracing.Config) string {
		var parts []string
		if c.System != "" {
			parts = append(parts, "system="+c.System)
		}
		if c.ConsumerGroup != "" {
			parts = append(parts, "consumer_group="+c.ConsumerGroup)
		}
		if len(c.Propagators) > 0 {
			parts = append(parts, "propagators="+strings.Join(c.Propagators, ","))
		}
		return strings.Join(parts, " ")
	}, func(c tracing.Config, b BuildEnv) (built, error) {
		var opts []tracing.Option
		if b.Deps.System != "" {
			opts = append(opts, tracing.WithSystem(b.Deps.System))
		}
		opts = append(opts, tracing.WithTracerProvider(b.Deps.TracerProvider), tracing.WithMeterProvider(b.Deps.MeterProvider))
		tr, err := tracing.New(append(opts, c.Options()...)...)
		if err != nil {
			return built{}, err
		}
		return built{mw: tr.Middleware, decorate: tr.DecoratePublisher}, nil
	})
}

// metrics: true records handler duration and outcomes. With no
// MeterProvider in Deps it is a free pass-through.
func metricsSection() Section {
	return switchSection("metrics", middleware.SlotMetrics, func(b BuildEnv) (message.HandlerMiddleware, error) {
		m, err := tracing.NewMetrics(tracing.WithMeterProvider(b.Deps.MeterProvider))
		if err != nil {
			return nil, err
		}
		return m.Middleware, nil
	})
}

// priority: {scheduler: name} waits for a slot of a shared scheduler.
func prioritySection() Section {
	s := newSection("priority", middleware.SlotPriority, func(c priority.Config) string {
		l := "scheduler=" + c.Scheduler
		if c.DefaultPriority != nil {
			l += fmt.Sprintf(" default_priority=%d", *c.DefaultPriority)
		}
		return l
	}, func(c priority.Config, b BuildEnv) (built, error) {
		sched, err := b.Scheduler(c.Scheduler)
		if err != nil {
			return built{}, err
		}
		mw, err := sched.HandlerMiddleware(c.Options()...)
		if err != nil {
			return built{}, err
		}
		return built{mw: mw, instance: sched}, nil
	})
	s.ref = func(v any) (string, string, string) { return "schedulers", v.(priority.Config).Scheduler, "scheduler" }
	return s
}

// dlq: retry with backoff and dead-lettering, with payload validation when
// the file has schemas (or Deps.Validator is set).
func dlqSection() Section {
	return newSection("dlq", middleware.SlotDLQ, func(c dlq.Config) string {
		r, err := dlq.New(nopPublisher{}, c.Options()...)
		if err != nil {
			return ""
		}
		if c.SharedAttempts() {
			return r.Label() + " attempts=shared"
		}
		return r.Label()
	}, func(c dlq.Config, b BuildEnv) (built, error) {
		if b.Deps.Publisher == nil {
			return built{}, fmt.Errorf("the dlq slot needs Deps.Publisher to publish dead letters")
		}
		var opts []dlq.Option
		if c.SharedAttempts() {
			if b.Deps.AttemptStore == nil {
				return built{}, fmt.Errorf("dlq attempts: shared needs Deps.AttemptStore (adapters/dlqstore.Attempts builds it from the store section)")
			}
			opts = append(opts, dlq.WithAttemptStore(b.Deps.AttemptStore))
		}
		if b.Deps.MaxHold > 0 {
			opts = append(opts, dlq.WithMaxHold(b.Deps.MaxHold))
		}
		opts = append(opts, c.Options()...)
		opts = append(opts, dlq.WithMeterProvider(b.Deps.MeterProvider))
		if b.Deps.Logger != nil {
			opts = append(opts, dlq.WithLogger(b.Deps.Logger))
		}
		if v := b.Deps.Validator; v != nil {
			opts = append(opts, dlq.WithValidator(v))
		} else if b.Schemas != nil {
			opts = append(opts, dlq.WithValidator(b.Schemas.Validate))
		}
		r, err := dlq.New(b.Deps.Publisher, opts...)
		if err != nil {
			return built{}, err
		}
		return built{mw: r.Middleware, layer: r, instance: r}, nil
	})
}

// nopPublisher lets Describe build a dlq.Retrier for its label.
type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// ratelimit: a token bucket (wait or reject), per key, adaptive.
func ratelimitSection() Section {
	return newSection("ratelimit", middleware.SlotRateLimit, ratelimitLabel,
		func(c ratelimit.Config, b BuildEnv) (built, error) {
			var opts []ratelimit.Option
			if b.Deps.MaxHold > 0 {
				opts = append(opts, ratelimit.WithMaxHold(b.Deps.MaxHold))
			}
			opts = append(opts, c.Options()...)
			opts = append(opts, ratelimit.WithName(b.Handler), ratelimit.WithMeterProvider(b.Deps.MeterProvider),
				ratelimit.WithLogger(b.Deps.Logger))
			fo, err := fleetOptions(b) // the fleet section's limit, in this limiter
			if err != nil {
				return built{}, err
			}
			opts = append(opts, fo...)
			l, err := ratelimit.New(opts...)
			if err != nil {
				return built{}, err
			}
			return built{mw: l.Middleware, closer: l, instance: l}, nil
		})
}

func ratelimitLabel(c ratelimit.Config) string {
	var parts []string
	if c.Rate != nil {
		r := "rate=" + iconfig.FormatRate(*c.Rate)
		if *c.Rate == 0 {
			r += " (paused: admits nothing)"
		}
		parts = append(parts, r)
	}
	if c.Burst != nil {
		parts = append(parts, fmt.Sprintf("burst=%d", *c.Burst))
	}
	if c.Mode != "" {
		parts = append(parts, "mode="+c.Mode)
	}
	if c.MaxWait > 0 {
		parts = append(parts, "max_wait="+c.MaxWait.String())
	}
	if c.Key != nil && c.Key.Metadata != "" {
		parts = append(parts, "key=metadata:"+c.Key.Metadata)
	}
	if p := c.PerKey; p != nil {
		parts = append(parts, "per_key="+iconfig.FormatRate(p.Rate))
	}
	if a := c.Adaptive; a != nil {
		parts = append(parts, "adaptive")
	}
	return strings.Join(parts, " ")
}
