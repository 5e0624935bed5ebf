package config

import (
	"fmt"
	"io"

	"github.com/levee-dev/levee/breaker"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/priority"
)

// sharedKind is a named shared resource section (for example breakers):
// decode validates one entry when the file is loaded, build creates the
// resource the first time a handler refers to it.
type sharedKind struct {
	decode func(raw iconfig.Raw) (any, error)
	build  func(name string, v any, deps Deps) (any, io.Closer, error)
}

// sharedKinds lists the shared-resource sections and how to build each.
func sharedKinds() map[string]sharedKind {
	return map[string]sharedKind{
		"schedulers": {
			decode: func(raw iconfig.Raw) (any, error) {
				var c priority.SchedulerConfig
				if err := raw.Decode(&c); err != nil {
					return nil, err
				}
				return c, nil
			},
			build: func(name string, v any, deps Deps) (any, io.Closer, error) {
				var opts []priority.Option
				if deps.MaxHold > 0 {
					opts = append(opts, priority.WithMaxHold(deps.MaxHold))
				}
				opts = append(opts, v.(priority.SchedulerConfig).Options()...)
				s, err := priority.NewScheduler(append(opts, priority.WithName(name),
					priority.WithMeterProvider(deps.MeterProvider))...)
				if err != nil {
					return nil, nil, fmt.Errorf("schedulers.%s: %w", name, err)
				}
				return s, s, nil
			},
		},
		"breakers": {
			decode: func(raw iconfig.Raw) (any, error) {
				var c breaker.Config
				if err := raw.Decode(&c); err != nil {
					return nil, err
				}
				if c.Shared != "" {
					return nil, raw.Errorf("a shared breaker cannot itself refer to shared %q", c.Shared)
				}
				return c, nil
			},
			build: func(name string, v any, deps Deps) (any, io.Closer, error) {
				c := v.(breaker.Config)
				b, err := breaker.New(breakerOptions(c, name, deps)...)
				if err != nil {
					return nil, nil, fmt.Errorf("breakers.%s: %w", name, err)
				}
				// Every handler's section adds its DrainMiddleware.
				return sharedBreaker{b, separateDrain(c)}, b, nil
			},
		},
	}
}

// breakerOptions turns a breaker section and the deps into options; the
// section's own max_hold (inside c.Options) wins over deps.MaxHold. A
// breaker whose drain waits in the ratelimit slot (separateDrain) gets
// WithSeparateDrain; its section installs DrainMiddleware there.
func breakerOptions(c breaker.Config, name string, deps Deps) []breaker.Option {
	var opts []breaker.Option
	if deps.MaxHold > 0 {
		opts = append(opts, breaker.WithMaxHold(deps.MaxHold))
	}
	opts = append(opts, c.Options()...)
	if separateDrain(c) {
		opts = append(opts, breaker.WithSeparateDrain())
	}
	if hook := deps.OnBreakerStateChange; hook != nil {
		opts = append(opts, breaker.WithOnStateChange(func(from, to breaker.State) { hook(name, from, to) }))
	}
	return append(opts, breaker.WithName(name),
		breaker.WithMeterProvider(deps.MeterProvider), breaker.WithLogger(deps.Logger))
}
