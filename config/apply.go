package config

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// Applied is the result of Apply or Build: the per-handler stacks and the
// resources they own, read back with typed accessors. Close it after the
// router has stopped. Its accessors are safe for concurrent use.
type Applied struct {
	stacks    map[string]*middleware.Stack
	instances map[string]any // by "handler/key", written only while building

	mu      sync.Mutex // guards closers, shared and closed
	closers []io.Closer
	shared  map[string]any
	closed  bool
}

// Stack returns the stack built for the named handler, or nil.
func (a *Applied) Stack(handler string) *middleware.Stack { return a.stacks[handler] }

// Breaker returns the breaker of the handler's breaker section (its own,
// or the shared one it names), and whether it has one: for State, or to
// watch it in tests and demos.
func (a *Applied) Breaker(handler string) (*breaker.Breaker, bool) {
	return instance[*breaker.Breaker](a, handler, "breaker")
}

// Scheduler returns the shared scheduler the handler's priority section
// names, and whether it has one.
func (a *Applied) Scheduler(handler string) (*priority.Scheduler, bool) {
	return instance[*priority.Scheduler](a, handler, "priority")
}

// Limiter returns the limiter of the handler's ratelimit section, and
// whether it has one.
func (a *Applied) Limiter(handler string) (*ratelimit.Limiter, bool) {
	return instance[*ratelimit.Limiter](a, handler, "ratelimit")
}

// Retrier returns the retrier of the handler's dlq section, and whether it
// has one.
func (a *Applied) Retrier(handler string) (*dlq.Retrier, bool) {
	return instance[*dlq.Retrier](a, handler, "dlq")
}

func instance[T any](a *Applied, handler, key string) (T, bool) {
	v, ok := a.instances[handler+"/"+key].(T)
	return v, ok
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
		names := sortedKeys(have)
		var hints []string
		for _, m := range missing {
			if s := iconfig.Suggest(m, names); s != "" {
				hints = append(hints, fmt.Sprintf("%q for %q", s, m))
			}
		}
		hint := ""
		if len(hints) > 0 {
			hint = "; did you mean " + strings.Join(hints, ", ") + "?"
		}
		return nil, fmt.Errorf("%w: %s configures handler(s) %s that the router does not have%s (router handlers: %s)",
			ErrInvalidConfig, cfg.file, strings.Join(missing, ", "), hint, strings.Join(names, ", "))
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
//
// A max_hold or max_wait longer than deps.MaxHold (the transport's ack
// deadline) is an error (CheckDeadline); Warnings are logged through
// deps.Logger.
func Build(cfg *Config, deps Deps) (*Applied, error) {
	if err := cfg.CheckDeadline(deps.MaxHold); err != nil {
		return nil, err
	}
	if deps.Logger != nil {
		for _, w := range cfg.Warnings(deps) {
			deps.Logger.Info("levee/config: warning: "+w, nil)
		}
	}
	a := &Applied{stacks: map[string]*middleware.Stack{}, shared: map[string]any{}, instances: map[string]any{}}
	for _, name := range cfg.HandlerNames() {
		s, closers, err := a.stack(cfg, name, deps)
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

// stack builds the configured handler's Stack. The returned closers release
// what building created (shared resources are in a.closers already).
func (a *Applied) stack(cfg *Config, name string, deps Deps) (*middleware.Stack, []io.Closer, error) {
	hc := cfg.handlers[name]
	s := middleware.NewStack()
	var closers []io.Closer
	type extra struct {
		mw    message.HandlerMiddleware
		label string
	}
	extras := map[middleware.Slot][]extra{}
	also := func(slot middleware.Slot, mw message.HandlerMiddleware, label string) {
		extras[slot] = append(extras[slot], extra{mw, label})
	}
	own := map[middleware.Slot]extra{}
	for _, p := range hc.parts {
		if p.sec.Slot == SlotHandler {
			continue
		}
		env := BuildEnv{Handler: name, Deps: deps, Schemas: cfg.schemas, Also: also, shared: a.sharedFunc(cfg, deps)}
		b, err := p.sec.build(p.value, env)
		if err != nil {
			for _, cl := range closers {
				_ = cl.Close()
			}
			return nil, nil, fmt.Errorf("%s: handlers.%s.%s: %w", cfg.file, name, p.sec.Key, err)
		}
		if b.closer != nil {
			closers = append(closers, b.closer)
		}
		if b.instance != nil {
			a.instances[name+"/"+p.sec.Key] = b.instance
		}
		label := p.sec.label(p.value)
		if b.mw != nil { // a section without its own middleware (fleet) leaves the slot to others
			s.SetLabeled(p.sec.Slot, b.mw, label)
			own[p.sec.Slot] = extra{b.mw, label}
		}
	}
	for slot, es := range extras {
		mws := make([]message.HandlerMiddleware, 0, len(es)+1)
		var labels []string
		for _, e := range es {
			mws = append(mws, e.mw)
			labels = append(labels, e.label)
		}
		if o, ok := own[slot]; ok {
			mws = append(mws, o.mw)
			if o.label != "" {
				labels = append(labels, o.label)
			}
		}
		s.SetLabeled(slot, middleware.Chain(mws...), strings.Join(labels, " + "))
	}
	return s, closers, nil
}

func (a *Applied) sharedFunc(cfg *Config, deps Deps) func(section, name string) (any, error) {
	return func(section, name string) (any, error) {
		key := section + "/" + name
		a.mu.Lock()
		defer a.mu.Unlock()
		if v, ok := a.shared[key]; ok {
			return v, nil
		}
		raw, ok := cfg.shared[section][name]
		if !ok {
			return nil, fmt.Errorf("%w: %s %q is not defined (defined: %s)", errNoShared, section, name,
				strings.Join(sortedKeys(cfg.shared[section]), ", "))
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

// errNoShared is returned for a reference to a shared resource that the
// file does not define.
var errNoShared = errors.New("no such shared resource")

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
