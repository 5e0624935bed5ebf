package config

import (
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/validate"
)

// SlotHandler marks a Section that configures the handler itself rather
// than a middleware (for example batch): it is decoded and validated with
// the file, listed last by Describe, read back with Value (or
// Handler.Batch), and never added to the Stack. It is not a slot of
// middleware.Stack.
const SlotHandler middleware.Slot = 100

// Deps are what building middlewares from configuration needs beyond the
// file. Every field may be left zero.
type Deps struct {
	// Publisher publishes dead letters (dlq). For a handler with a
	// tracing section and a TracerProvider, the dlq publishes through it
	// decorated by that handler's tracer (tracing.Tracer.DecoratePublisher,
	// which leaves an already decorated publisher as it is).
	Publisher message.Publisher
	// Logger receives warnings and errors; nil means no logging.
	Logger watermill.LoggerAdapter
	// TracerProvider and MeterProvider turn telemetry on; nil means off.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// System is the messaging.system of the transport (for example
	// "rabbitmq"), put on consumer spans; adapters know it.
	System string
	// MaxHold bounds every wait of a message (breaker, priority, rate
	// limit, retry backoff, a batch's linger and queueing), normally the
	// transport's ack deadline. Zero means no bound. A section's own
	// max_hold takes precedence.
	MaxHold time.Duration
	// Validator, when set, validates payloads before every attempt in the
	// dlq slot instead of the file's schemas (for example a registry
	// compiled from embedded schemas: registry.Validate).
	Validator func(topic string, payload []byte) error
	// MaxInFlight is how many messages the transport delivers at once per
	// handler; Config.Batcher warns at start when a batch is larger than
	// what can ever be in flight. Zero means unknown.
	MaxInFlight int
	// AttemptStore counts failed attempts across processes for the dlq
	// sections with `attempts: shared` (adapters/dlqstore.Attempts builds
	// it from the store section). Nil: such a section fails to build.
	AttemptStore dlq.AttemptStore
	// DedupStore holds the claims and done marks of the dedup sections with
	// `store: shared` (adapters/redisdedup, or the PostgreSQL inbox
	// adapters/pgdedup). Nil: such a section fails to build.
	DedupStore dedup.Store
	// OnBreakerStateChange, when set, is called on every state change of
	// every breaker the file builds (breaker.WithOnStateChange), with the
	// breaker's name: the handler's for its own breaker, the entry's for
	// a shared one. It sees every transition, however short, unlike a
	// sampler of State. Nil means none. A fleet section's breaker
	// (breaker.FleetBreaker) has no hook: it is not called for it; its
	// state is FleetBreaker.State and levee.fleet.breaker.state.
	OnBreakerStateChange func(name string, from, to breaker.State)
	// FleetStore keeps fleet-wide rate limits and breakers for the fleet
	// sections (adapters/fleetredis.Open from Config.Fleet builds it).
	// Nil: such a section fails to build.
	FleetStore breaker.FleetStore
}

// BuildEnv is what a Section's builder receives.
type BuildEnv struct {
	// Handler is the router handler name the stack is built for.
	Handler string
	Deps    Deps
	// Schemas is the file's schema registry, or nil.
	Schemas *validate.Registry
	// Also adds mw to another slot of the same stack, outside that slot's
	// own middleware (the breaker puts its drain ramp in the ratelimit
	// slot this way).
	Also func(slot middleware.Slot, mw message.HandlerMiddleware, label string)

	shared func(section, name string) (any, error)
	// handler is the configured handler the stack is built for, so that
	// a section can follow another's settings (the fleet limit waits or
	// rejects as the handler's ratelimit section says).
	handler *Handler
}

// Breaker returns the shared breaker of the file's breakers section by
// name, building it the first time; Applied.Close closes it.
func (b BuildEnv) Breaker(name string) (*breaker.Breaker, error) {
	sb, err := b.sharedBreaker(name)
	return sb.Breaker, err
}

// sharedBreaker is a shared breaker as the breakers section built it:
// separate tells that its drain ramp waits in DrainMiddleware, which every
// handler referring to it installs (separateDrain).
type sharedBreaker struct {
	*breaker.Breaker
	separate bool
}

func (b BuildEnv) sharedBreaker(name string) (sharedBreaker, error) {
	v, err := b.shared("breakers", name)
	if err != nil {
		return sharedBreaker{}, err
	}
	return v.(sharedBreaker), nil
}

// Scheduler returns the shared scheduler of the file's schedulers section
// by name, building it the first time; Applied.Close closes it.
func (b BuildEnv) Scheduler(name string) (*priority.Scheduler, error) {
	v, err := b.shared("schedulers", name)
	if err != nil {
		return nil, err
	}
	return v.(*priority.Scheduler), nil
}

// Section describes one concern's handler-level configuration key: how to
// decode and validate it, and how to build its middleware. Concern packages
// own their section structs; the list of sections lives in this package.
// Make one with NewSection.
type Section struct {
	// Key is the handler-level key ("ratelimit").
	Key string
	// Slot is where the built middleware goes in the Stack, or SlotHandler.
	Slot middleware.Slot
	// decode decodes and validates raw; it returns the section value (nil:
	// the section is off).
	decode func(raw iconfig.Raw) (any, error)
	// label describes a decoded value for `levee config check`.
	label func(v any) string
	// ref, when set, names the shared resource a decoded value refers to
	// (section, name, and the key holding the name), checked at load.
	ref func(v any) (section, name, key string)
	// build returns the middleware for a decoded value.
	build func(v any, b BuildEnv) (built, error)
}

// built is what a section's builder made: the middleware, what closing
// the Applied must close (nil for a shared resource, closed by its owner),
// and the instance the Applied's typed accessors return.
type built struct {
	mw message.HandlerMiddleware
	// layer, when set, is the middleware as a value (mw is its Middleware),
	// set with Stack.SetLayer so a HandlerAware one learns the handler.
	layer    middleware.Layer
	closer   io.Closer
	instance any
	// decorate, when set, wraps Deps.Publisher for the sections built
	// after this one (the tracing slot traces the dlq's dead letters).
	decorate message.PublisherDecorator
}

// NewSection returns a Section whose value type is C. Decoding into C is
// strict and located; C's Validate method, if any, runs after decoding.
// build returns the middleware and an optional closer for what it created,
// closed by Applied.Close.
func NewSection[C any](key string, slot middleware.Slot, label func(C) string,
	build func(C, BuildEnv) (message.HandlerMiddleware, io.Closer, error)) Section {
	return newSection(key, slot, label, func(c C, b BuildEnv) (built, error) {
		mw, closer, err := build(c, b)
		return built{mw: mw, closer: closer, instance: closer}, err
	})
}

func newSection[C any](key string, slot middleware.Slot, label func(C) string, build func(C, BuildEnv) (built, error)) Section {
	return Section{
		Key:  key,
		Slot: slot,
		decode: func(raw iconfig.Raw) (any, error) {
			var c C
			if err := raw.Decode(&c); err != nil {
				return nil, everyProblem(raw, &c, err)
			}
			return c, nil
		},
		label: func(v any) string { return label(v.(C)) },
		build: func(v any, b BuildEnv) (built, error) { return build(v.(C), b) },
	}
}

// everyProblem returns err, the error of decoding raw into v, with every
// problem v's Validate reports located at its key: the decoder locates
// only the first *FieldError of a Validate error, and a section's
// Validate (dedup, batch) may report several. An error from decoding
// itself (a wrong type, an unknown key) is returned as it is: Validate
// did not run, and v is only partly decoded.
func everyProblem(raw iconfig.Raw, v any, err error) error {
	val, ok := v.(interface{ Validate() error })
	if !ok {
		return err
	}
	if e, ok := err.(*iconfig.Error); !ok || !e.FromValidate(raw.Path) {
		return err
	}
	verr := val.Validate()
	if verr == nil {
		return err
	}
	return raw.LocateAll(verr)
}
