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
	if err := cfg.usable(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: Apply needs a router, got nil", ErrInvalidConfig)
	}
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
// A max_hold or max_wait longer than deps.MaxHold (a share of the
// transport's ack deadline) is an error (CheckMaxHold); Warnings are
// logged through deps.Logger.
func Build(cfg *Config, deps Deps) (*Applied, error) {
	if err := cfg.usable(); err != nil {
		return nil, err
	}
	if err := cfg.CheckMaxHold(deps.MaxHold); err != nil {
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
		layer middleware.Layer
	}
	extras := map[middleware.Slot][]extra{}
	also := func(slot middleware.Slot, mw message.HandlerMiddleware, label string) {
		extras[slot] = append(extras[slot], extra{mw: mw, label: label})
	}
	own := map[middleware.Slot]extra{}
	for _, p := range hc.parts {
		if p.sec.Slot == SlotHandler {
			continue
		}
		env := BuildEnv{Handler: name, Deps: deps, Schemas: cfg.schemas, Also: also, shared: a.sharedFunc(cfg, deps), handler: hc}
		b, err := p.sec.build(p.value, env)
		if err != nil {
			for _, cl := range closers {
				_ = cl.Close()
			}
			// Located like a load error (file:line: key path), so a
			// problem only building finds still names the section's line.
			path := "handlers." + name + "." + p.sec.Key
			return nil, nil, fmt.Errorf("%s:%d: %s: %w", cfg.file, cfg.keyLines[path], path, err)
		}
		if b.closer != nil {
			closers = append(closers, b.closer)
		}
		if b.decorate != nil && deps.Publisher != nil {
			// Sections are built in canonical order: the dlq, inside
			// tracing, publishes its dead letters through the decorated
			// publisher.
			if deps.Publisher, err = b.decorate(deps.Publisher); err != nil {
				for _, cl := range closers {
					_ = cl.Close()
				}
				return nil, nil, fmt.Errorf("%s: %s: decorating Deps.Publisher: %w", cfg.file, name, err)
			}
		}
		if b.instance != nil {
			a.instances[name+"/"+p.sec.Key] = b.instance
		}
		label := p.sec.label(p.value)
		switch {
		case b.layer != nil:
			s.SetLayer(p.sec.Slot, b.layer, label)
		case b.mw != nil: // a section without its own middleware (fleet) leaves the slot to others
			s.SetLabeled(p.sec.Slot, b.mw, label)
		}
		if b.mw != nil {
			own[p.sec.Slot] = extra{b.mw, label, b.layer}
		}
	}
	for slot, es := range extras {
		mws := make([]message.HandlerMiddleware, 0, len(es)+1)
		var labels []string
		for _, e := range es {
			mws = append(mws, e.mw)
			labels = append(labels, e.label)
		}
		o, ok := own[slot]
		if ok && o.label != "" {
			labels = append(labels, o.label)
		}
		if ok && o.layer != nil {
			s.SetLayer(slot, outside{middleware.Chain(mws...), o.layer}, strings.Join(labels, " + "))
			continue
		}
		if ok {
			mws = append(mws, o.mw)
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

// outside is a slot's Layer with the middlewares other sections added to
// its slot (BuildEnv.Also) outside it; it stays HandlerAware when the
// layer is.
type outside struct {
	outer message.HandlerMiddleware
	inner middleware.Layer
}

func (o outside) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return o.outer(o.inner.Middleware(next))
}

func (o outside) MiddlewareFor(next message.HandlerFunc, handler any) message.HandlerFunc {
	if a, ok := o.inner.(middleware.HandlerAware); ok {
		return o.outer(a.MiddlewareFor(next, handler))
	}
	return o.Middleware(next)
}

// Locate names fn, the service's handler function (any func type), as
// the named handler's for its stack (middleware.Stack.Locate): its dead
// letters name fn's definition, "pkg.Func (file:line)", in
// levee_code_location. A handler added with Router.AddHandler needs no
// call, the stack sees it; one added with AddConsumerHandler does
// (Watermill wraps it in a closure of its own), and so does a batcher's
// (pass the batch function). adapters/service's Handle and HandleBatch
// call it. Call it before the router runs the handler; it reports whether
// the file configures the handler (a handler without a stack has no dlq).
func (a *Applied) Locate(handler string, fn any) bool {
	s := a.stacks[handler]
	if s == nil {
		return false
	}
	s.Locate(fn)
	return true
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

// usable rejects a nil *Config, which a caller gets by going on after
// Load, Parse or Check returned an error.
func (c *Config) usable() error {
	if c == nil {
		return fmt.Errorf("%w: the *Config is nil (did Load return an error?)", ErrInvalidConfig)
	}
	return nil
}
