package middleware

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Applied is the result of Apply: the per-handler stacks attached to a
// router and the resources they own. Close it after the router has stopped.
type Applied struct {
	stacks    map[string]*Stack
	instances map[string]any // by "handler/key", written only while building

	mu      sync.Mutex // guards closers and shared
	closers []io.Closer
	shared  map[string]any
	closed  bool
}

// Stack returns the stack built for the named handler, or nil.
func (a *Applied) Stack(handler string) *Stack { return a.stacks[handler] }

// Instance returns what a handler's section built (for example the
// *breaker.Breaker of handlers.payments.breaker, shared or not), or nil.
func (a *Applied) Instance(handler, key string) any { return a.instances[handler+"/"+key] }

// Shared returns a shared resource built for the configuration (for example
// a *priority.Scheduler by name under "schedulers"), or nil if it was never
// referenced by a handler.
func (a *Applied) Shared(section, name string) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shared[section+"/"+name]
}

// Close releases every resource the stacks created (schedulers, breakers,
// limiters), in reverse order of creation. It is idempotent.
func (a *Applied) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	closers := a.closers
	a.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Apply attaches each configured handler's Stack to the router: every
// message of a configured handler passes through that handler's stack, in
// canonical order; handlers that are not configured are untouched. Call it
// after adding the handlers and before Router.Run. A configured handler
// that the router does not have is an error naming the handlers it has.
//
// Watermill gives no access to a *message.Handler by name, so Apply adds
// one router-level middleware that resolves the handler name from the
// message context once per handler and then calls that handler's stack.
// Middlewares added to the router before Apply run outside the stacks.
func Apply(r *message.Router, cfg *Config, deps Deps) (*Applied, error) {
	have := r.Handlers()
	var missing []string
	for _, name := range cfg.HandlerNames() {
		if _, ok := have[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		var names []string
		for n := range have {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: %s configures handler(s) %s that the router does not have (router handlers: %s)",
			ErrInvalidConfig, cfg.File, strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	a, err := Build(cfg, deps)
	if err != nil {
		return nil, err
	}
	r.AddMiddleware(a.Middleware)
	return a, nil
}

// Build builds every configured handler's stack without a router; attach
// them with Middleware (router-level) or Stack(name).Middleware
// (handler-level, via message.Handler.AddMiddleware).
func Build(cfg *Config, deps Deps) (*Applied, error) {
	a := &Applied{stacks: map[string]*Stack{}, shared: map[string]any{}, instances: map[string]any{}}
	for _, name := range cfg.HandlerNames() {
		s, closers, err := cfg.stack(name, deps, a.sharedFunc(cfg, deps), a.instances)
		a.mu.Lock()
		a.closers = append(a.closers, closers...)
		a.mu.Unlock()
		if err != nil {
			_ = a.Close()
			return nil, err
		}
		a.stacks[name] = s
	}
	return a, nil
}

func (a *Applied) sharedFunc(cfg *Config, deps Deps) func(section, name string) (any, error) {
	return func(section, name string) (any, error) {
		key := section + "/" + name
		a.mu.Lock()
		defer a.mu.Unlock()
		if v, ok := a.shared[key]; ok {
			return v, nil
		}
		raw, ok := cfg.Shared[section][name]
		if !ok {
			var names []string
			for n := range cfg.Shared[section] {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%w: %s %q is not defined (defined: %s)", errNoShared, section, name, strings.Join(names, ", "))
		}
		kind, ok := sharedKinds()[section]
		if !ok {
			return nil, fmt.Errorf("%w: no builder for shared section %q", errNoShared, section)
		}
		decoded, err := kind.decode(raw)
		if err != nil {
			return nil, err
		}
		v, closer, err := kind.build(name, decoded, deps)
		if err != nil {
			return nil, err
		}
		if closer != nil {
			a.closers = append(a.closers, closer)
		}
		a.shared[key] = v
		return v, nil
	}
}

// Middleware is the router-level middleware that dispatches each handler's
// messages to its stack. Apply adds it; use it directly with Build.
func (a *Applied) Middleware(next message.HandlerFunc) message.HandlerFunc {
	var (
		once    sync.Once
		wrapped message.HandlerFunc
	)
	return func(msg *message.Message) ([]*message.Message, error) {
		once.Do(func() {
			wrapped = next
			if s := a.stacks[message.HandlerNameFromCtx(msg.Context())]; s != nil {
				wrapped = s.Middleware(next)
			}
		})
		return wrapped(msg)
	}
}
