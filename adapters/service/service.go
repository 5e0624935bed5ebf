package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// HoldFraction is the share of the transport's ack deadline that New
// gives config.Deps.MaxHold when it is zero: a message held longer would
// be redelivered by the broker while still held.
const HoldFraction = 0.8

// Service is a transport, a router and the Levee stacks of one
// levee.yaml. Build it with New, add handlers, then Run.
type Service struct {
	// Config is the file the service was built from.
	Config *config.Config
	// Transport is the transport of the file's transport section.
	Transport *adapters.Transport
	// Router is the Watermill router the handlers are added to; add
	// router-level middleware or plugins to it before Run.
	Router *message.Router
	// Store is the store of the file's store section (an in-memory one
	// without it), for a dlqops.Monitor or the CLI's operations.
	Store dlqops.Store
	// WatchDeadLetters makes Run record every dead letter in Store: it
	// adds a dlqops.Monitor handler, named "levee-dlq-monitor-<topic>", on
	// the dead-letter topic of each registered handler that has a dlq
	// slot, so that `levee dlq` lists them. New sets it when the file has
	// a store section; set it to false before Run when another service
	// records them.
	WatchDeadLetters bool

	deps       config.Deps
	closeStore func() error
	batchers   []*batch.Batcher
	// handlers are the service's handler functions by name, which Run
	// names to their stacks (config.Applied.Locate): Watermill and the
	// batcher wrap them, so the stacks cannot see them.
	handlers map[string]any
	// topics are the handlers' subscribed topics by name, for the
	// dead-letter monitor.
	topics map[string]string

	mu      sync.Mutex
	applied *config.Applied // guarded by mu
	ran     bool            // guarded by mu: Router.Run was called
	closed  bool            // guarded by mu
	// done is closed once the first Close returned; a later Close waits
	// for it.
	done chan struct{}
}

// New builds the transport and the store of cfg, the fleet store of its
// fleet section (adapters/fleetredis, unless deps.FleetStore is set), and
// a router. deps are the dependencies for the stacks (config.Build); its
// zero fields are filled from the transport: Publisher, System,
// MaxInFlight, MaxHold (HoldFraction of the ack deadline) and, when the
// store is shared, AttemptStore. A fleet store unreachable at start is
// logged (deps.Logger) and used anyway: the fleet sections run on their
// on_store_error mode until it answers. Errors are the transport's, the
// store's and the fleet store's (invalid section) and the file's
// holds above the max hold the stacks get (config.Config.CheckMaxHold;
// Run's config.Apply would refuse them), each wrapping its package's
// sentinel.
func New(ctx context.Context, cfg *config.Config, deps config.Deps) (*Service, error) {
	tc, err := adapters.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckMaxHold(MaxHold(tc.Capabilities().AckDeadline, deps)); err != nil {
		return nil, err
	}
	tr, err := adapters.Build(ctx, tc, deps.Logger)
	if err != nil {
		return nil, err
	}
	sc, _ := cfg.Store()
	store, closeStore, err := dlqstore.FromConfig(ctx, sc)
	if err != nil {
		_ = tr.Close()
		return nil, err
	}
	if closeStore, err = openFleet(ctx, cfg, &deps, closeStore); err != nil {
		_ = closeStore()
		_ = tr.Close()
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, logger)
	if err != nil {
		_ = closeStore()
		_ = tr.Close()
		return nil, err
	}
	// Outermost: it turns a deferral's RetryAfter into the transport's
	// delayed redelivery (NATS, PostgreSQL, Redis); without it a deferred
	// message comes back at once.
	router.AddMiddleware(tr.Middleware)
	_, hasStore := cfg.Store()
	return &Service{Config: cfg, Transport: tr, Router: router, Store: store, WatchDeadLetters: hasStore,
		deps: fill(deps, tr.Capabilities, store), closeStore: closeStore, done: make(chan struct{})}, nil
}

// openFleet opens the fleet store of cfg's fleet section into
// deps.FleetStore when the file has one and deps has none, and returns
// closeStore extended to close it as well.
func openFleet(ctx context.Context, cfg *config.Config, deps *config.Deps, closeStore func() error) (func() error, error) {
	fc, ok := cfg.Fleet()
	if !ok || deps.FleetStore != nil {
		return closeStore, nil
	}
	fs, err := fleetredis.Open(ctx, fc.Store, fc.Prefix, 0)
	if errors.Is(err, fleetredis.ErrUnreachable) {
		// A replica that starts during a Redis outage runs as the file
		// says it should during one (each section's on_store_error),
		// rather than failing: the store's calls fail until it answers.
		if deps.Logger != nil {
			deps.Logger.Error("levee/service: fleet store unreachable at start; the fleet sections run on their on_store_error mode until it answers", err, nil)
		}
		fs, err = fleetredis.Dial(fc.Store, fc.Prefix, 0)
	}
	if err != nil {
		return closeStore, err
	}
	deps.FleetStore = fs
	return func() error { return errors.Join(closeStore(), fs.Close()) }, nil
}

// MaxHold is the longest the stacks of a service hold a message:
// deps.MaxHold when set, else HoldFraction of the transport's ack
// deadline (none without one). `levee config check` checks the file's
// holds against it.
func MaxHold(ackDeadline time.Duration, deps config.Deps) time.Duration {
	if deps.MaxHold == 0 && ackDeadline > 0 {
		return time.Duration(float64(ackDeadline) * HoldFraction)
	}
	return deps.MaxHold
}

// fill sets deps' zero fields from the transport and the store.
func fill(deps config.Deps, caps adapters.Capabilities, store dlqops.Store) config.Deps {
	if deps.System == "" {
		deps.System = caps.System
	}
	if deps.MaxInFlight == 0 {
		deps.MaxInFlight = caps.MaxInFlight
	}
	deps.MaxHold = MaxHold(caps.AckDeadline, deps)
	if deps.AttemptStore == nil {
		deps.AttemptStore, _ = dlqstore.Attempts(store)
	}
	return deps
}

// Deps returns the dependencies the stacks are built with: New's deps with
// the transport's filled in. Publisher is set by Run unless given.
func (s *Service) Deps() config.Deps { return s.deps }

// Handle registers h as the router handler name, consuming topic from the
// transport. The file's section for name (if any) wraps it when Run
// starts, and its dead letters name h's definition (levee_code_location).
func (s *Service) Handle(name, topic string, h message.NoPublishHandlerFunc) {
	s.Router.AddConsumerHandler(name, topic, s.Transport.Subscriber, h)
	s.locate(name, topic, h)
}

// locate records fn as the handler name's function and topic as its
// subscribed topic, for Run (and for the stack already applied when the
// router runs).
func (s *Service) locate(name, topic string, fn any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers, s.topics = map[string]any{}, map[string]string{}
	}
	s.handlers[name], s.topics[name] = fn, topic
	if s.applied != nil {
		s.applied.Locate(name, fn)
	}
}

// HandleBatch registers fn as the router handler name, consuming topic in
// batches configured by the file's batch section for name
// (config.Config.Batcher); Close closes the batcher after the router.
// Dead letters name fn's definition (levee_code_location).
func (s *Service) HandleBatch(name, topic string, fn batch.Func) error {
	b, err := s.Config.Batcher(name, fn, s.deps)
	if err != nil {
		return err
	}
	s.batchers = append(s.batchers, b)
	s.Router.AddConsumerHandler(name, topic, s.Transport.Subscriber, b.NoPublishHandler)
	s.locate(name, topic, fn)
	return nil
}

// Run applies the file's stacks to the router (config.Apply), adds the
// dead-letter monitor (WatchDeadLetters) and runs the router until ctx
// ends or the router is closed. It fails at once, with
// config.ErrInvalidConfig, when the file configures a handler that was
// not registered, a handler's dead-letter topic is the topic it consumes,
// a handler registered with Handle has a batch section (HandleBatch
// reads it), or, over a broker, two handlers (or a handler and the
// dead-letter monitor) consume one topic. Over PostgreSQL it logs a
// warning through Deps.Logger when its topics have more consumers than
// the transport's subscriber has connections (docs/TRANSPORTS.md, "Many
// handlers in one service").
func (s *Service) Run(ctx context.Context) error {
	deps := s.deps
	if deps.Publisher == nil {
		deps.Publisher = s.Transport.Publisher
	}
	applied, err := config.Apply(s.Router, s.Config, deps)
	if err != nil {
		return err
	}
	if err := s.checkHandlers(applied); err != nil {
		return errors.Join(err, applied.Close())
	}
	monitored := 0
	if s.WatchDeadLetters {
		if monitored, err = s.watch(applied, deps); err != nil {
			return errors.Join(err, applied.Close())
		}
	}
	if w := s.connsWarning(monitored); w != "" && deps.Logger != nil {
		deps.Logger.Info(w, nil)
	}
	s.mu.Lock()
	closed := s.closed
	s.applied = applied
	s.ran = !closed
	for name, fn := range s.handlers {
		applied.Locate(name, fn)
	}
	s.mu.Unlock()
	if closed {
		return errors.Join(errClosed, applied.Close())
	}
	return s.Router.Run(ctx)
}

var errClosed = errors.New("levee/service: closed")

// watch adds a dlqops.Monitor handler on the dead-letter topic of every
// registered handler with a dlq slot (one per topic) and returns how many
// it added.
func (s *Service) watch(applied *config.Applied, deps config.Deps) (int, error) {
	sc, _ := s.Config.Store()
	opts := []dlqops.Option{dlqops.WithStoreTimeout(sc.StoreTimeout()), dlqops.WithMeterProvider(deps.MeterProvider)}
	if deps.Logger != nil {
		opts = append(opts, dlqops.WithLogger(deps.Logger))
	}
	mon, err := dlqops.NewMonitor(s.Store, opts...)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	topics := map[string]bool{}
	for name, topic := range s.topics {
		if r, ok := applied.Retrier(name); ok {
			if t := r.Topic(topic); t != "" {
				topics[t] = true
			}
		}
	}
	s.mu.Unlock()
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		s.Router.AddConsumerHandler(MonitorHandlerPrefix+t, t, s.Transport.Subscriber, mon.Handle)
	}
	return len(topics), nil
}

// MonitorHandlerPrefix begins the name of each dead-letter monitor
// handler Run adds (WatchDeadLetters); the dead-letter topic follows.
const MonitorHandlerPrefix = "levee-dlq-monitor-"

// Running is closed once the router runs all its handlers.
func (s *Service) Running() chan struct{} { return s.Router.Running() }

// Close stops the router (waiting for handlers in progress), then closes
// the batchers, the stacks' resources, the transport and the store, and
// returns every error. It is idempotent: a Close called while another is
// in progress (a signal handler's and a deferred one) returns nil once
// that one has closed everything.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	applied, ran := s.applied, s.ran
	s.mu.Unlock()
	defer close(s.done)
	var errs []error
	if ran {
		// A router that never ran waits CloseTimeout for its handlers
		// (Watermill counts them from AddHandler): only close a run one.
		errs = append(errs, s.Router.Close())
	}
	for _, b := range s.batchers {
		errs = append(errs, b.Close())
	}
	if applied != nil {
		errs = append(errs, applied.Close())
	}
	errs = append(errs, s.Transport.Close(), s.closeStore())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("levee/service: close: %w", err)
	}
	return nil
}
