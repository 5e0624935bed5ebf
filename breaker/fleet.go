package breaker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/telemetry"
)

// FleetStore keeps fleet breakers (a shared window, the state machine, the
// probe lease, the force) and the drain's shared bucket.
// adapters/fleetredis.Store implements it.
type FleetStore interface {
	fleet.BreakerStore
	fleet.LeaseStore
}

// FleetState is a fleet breaker's state: closed, open, half-open or
// draining.
type FleetState = fleet.BreakerState

// The fleet breaker states.
const (
	FleetClosed   = fleet.StateClosed
	FleetOpen     = fleet.StateOpen
	FleetHalfOpen = fleet.StateHalfOpen
	FleetDraining = fleet.StateDraining
)

// OnStoreError is what a fleet breaker does while its store fails:
// fleet.Local keeps the last fleet state and trips on the replica's own
// window (min_requests scaled to its share), FailOpen lets messages run,
// FailClosed holds them as when open.
type OnStoreError = fleet.OnStoreError

// Defaults of Fleet.
const (
	DefaultFleetReportEvery = 200 * time.Millisecond
	DefaultFleetWindow      = 10 * time.Second
	DefaultFleetOpenFor     = 10 * time.Second
	DefaultFleetProbeTTL    = 5 * time.Second
	DefaultFleetMinRequests = 20
	DefaultFleetRatio       = 0.5
)

// Fleet configures a breaker shared by every replica (docs/FLEET.md).
// Zero values take the defaults.
type Fleet struct {
	// Store keeps the fleet's state. Required.
	Store FleetStore
	// Key names the breaker: replicas with the same Key share it. Required.
	Key string
	// FailureRatio and MinRequests: the fleet trips when its window holds
	// at least MinRequests outcomes with at least FailureRatio failures.
	// Defaults 0.5 and 20.
	FailureRatio float64
	MinRequests  uint64
	// Window is the shared window of outcome counts. Default 10s.
	Window time.Duration
	// OpenFor is how long the fleet stays open before one replica probes.
	// Default 10s.
	OpenFor time.Duration
	// ReportEvery is how often a replica sends its counts and learns the
	// fleet's state: every replica learns of a trip within ReportEvery plus
	// one round trip. Default 200ms.
	ReportEvery time.Duration
	// ProbeTTL is the probe lease: if the replica holding it does not
	// report a result within it, another replica may probe. Default 5s.
	ProbeTTL time.Duration
	// DrainWindow, DrainStart and DrainRate: after a good probe the
	// fleet's total throughput follows RampFraction from DrainStart
	// (default 10%) to 100% over DrainWindow (0: no drain), where 100% is
	// DrainRate messages per second, or the fleet's throughput over the
	// window that tripped when DrainRate is 0.
	DrainWindow time.Duration
	DrainStart  float64
	DrainRate   float64
	// MaxHold bounds a message's wait while the fleet is open or
	// draining; then it gets an *OpenError (a deferral). 0: no bound.
	MaxHold time.Duration
	// StoreTimeout bounds one store call. Default 50ms.
	StoreTimeout time.Duration
	// OnStoreError is what happens while the store fails. Default local.
	OnStoreError OnStoreError
	// Member names this replica. Default: host, pid and a random suffix.
	Member string
	// Name, MeterProvider and Logger: metrics (levee.fleet.*) and log
	// lines of fallbacks. Nil: off.
	Name          string
	MeterProvider metric.MeterProvider
	Logger        watermill.LoggerAdapter
}

func (f *Fleet) defaults() error {
	switch {
	case f.Store == nil:
		return invalid("fleet.store", "is required")
	case f.Key == "" || len(f.Key) > 200:
		return invalid("fleet.key", "must be 1 to 200 bytes")
	case f.FailureRatio < 0 || f.FailureRatio > 1 || f.FailureRatio != f.FailureRatio:
		return invalid("fleet.failure_ratio", "must be in [0, 1]")
	case f.DrainStart < 0 || f.DrainStart > 1 || f.DrainRate < 0:
		return invalid("fleet.drain", "start must be in [0, 1] and rate not negative")
	case f.Window < 0 || f.OpenFor < 0 || f.ReportEvery < 0 || f.ProbeTTL < 0 || f.DrainWindow < 0 || f.MaxHold < 0 || f.StoreTimeout < 0:
		return invalid("fleet", "durations must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&f.Window, DefaultFleetWindow)
	def(&f.OpenFor, DefaultFleetOpenFor)
	def(&f.ReportEvery, DefaultFleetReportEvery)
	def(&f.ProbeTTL, DefaultFleetProbeTTL)
	def(&f.StoreTimeout, fleet.DefaultStoreTimeout)
	if f.FailureRatio == 0 {
		f.FailureRatio = DefaultFleetRatio
	}
	if f.MinRequests == 0 {
		f.MinRequests = DefaultFleetMinRequests
	}
	if f.DrainStart == 0 {
		f.DrainStart = 0.1
	}
	return nil
}

// FleetBreaker is a circuit breaker shared by every replica. Each replica
// counts outcomes locally (two atomic counters) and publishes them every
// ReportEvery; the report's answer is the fleet's state, so a replica
// learns of a trip within ReportEvery plus a round trip and the message
// path reads one atomic word. While open a message waits (consumption
// pauses), as with Breaker. In half-open exactly one replica holds the
// probe lease and runs one message. While draining, messages take tokens
// of a fleet lease pool whose rate follows the ramp, so the ramp bounds
// the fleet's total throughput. Build it with NewFleet; it is safe for
// concurrent use; Close stops its goroutine.
type FleetBreaker struct {
	cfg     Fleet
	word    atomic.Uint32 // the effective fleet.BreakerState
	probe   atomic.Int32  // 1: this replica may start one probe
	result  atomic.Int32  // the probe's outcome not yet reported
	ok      atomic.Uint64 // successes since the last report
	fail    atomic.Uint64 // failures since the last report
	waiting atomic.Int64  // messages waiting in admit: a probe lease would have one to run
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	drain   *fleet.Pool
	ctl     *fleet.Telemetry
	waits   waitInstruments     // the Breaker's paused and wait instruments
	reg     metric.Registration // the state gauge's callback; nil without a meter
	closeMu sync.Once

	mu sync.Mutex
	// fields below are guarded by mu
	gen      chan struct{} // closed and replaced at every state change
	view     fleet.View
	viewAt   time.Time // when view was learned: a drain goes on from it on the local clock while the store fails
	degraded bool
	local    localWindow
}

// NewFleet returns a FleetBreaker and starts its reporting goroutine. It
// returns an error wrapping ErrInvalidConfig for an invalid Fleet.
func NewFleet(f Fleet) (*FleetBreaker, error) {
	if err := f.defaults(); err != nil {
		return nil, err
	}
	if f.Member == "" {
		f.Member = fleetMember()
	}
	ctl, err := fleet.NewTelemetry(f.MeterProvider, f.Logger, "breaker", f.Name)
	if err != nil {
		return nil, err
	}
	b := &FleetBreaker{cfg: f, kick: make(chan struct{}, 1), done: make(chan struct{}), ctl: ctl, gen: make(chan struct{})}
	if b.waits, err = newWaitInstruments(telemetry.Meter(f.MeterProvider)); err != nil {
		return nil, err
	}
	b.drain, err = fleet.NewPool(fleet.PoolConfig{Store: f.Store, Key: f.Key + ":drain", Member: f.Member,
		Period: min(f.ReportEvery, 100*time.Millisecond), StoreTimeout: f.StoreTimeout, OnError: f.OnStoreError, Observer: fleet.Inner{Telemetry: ctl}})
	if err != nil {
		return nil, invalid("fleet", "%s", err.Error())
	}
	if b.reg, err = b.stateGauge(); err != nil {
		_ = b.drain.Close()
		return nil, err
	}
	// The first report before the first message: a replica that starts
	// while the fleet is open (a restart during an outage) holds its
	// messages from the start instead of running them for ReportEvery.
	b.report(time.Now())
	b.wg.Add(1)
	go b.run()
	return b, nil
}

// stateGauge registers levee.fleet.breaker.state: the state this replica
// follows, in the enum of levee.breaker.state (fleetGauge).
func (b *FleetBreaker) stateGauge() (metric.Registration, error) {
	if b.cfg.MeterProvider == nil {
		return nil, nil
	}
	m := telemetry.Meter(b.cfg.MeterProvider)
	g, err := m.Int64ObservableGauge(fleet.MetricState, metric.WithUnit("{state}"),
		metric.WithDescription("The fleet breaker's state on this replica, "+stateGaugeDoc))
	if err != nil {
		return nil, err
	}
	set := metric.WithAttributes(fleet.AttrName.String(b.cfg.Name))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, fleetGauge(b.State()), set)
		return nil
	}, g)
}

// State returns the fleet state this replica last learned (with the force
// and, while the store fails, the on_store_error mode applied).
func (b *FleetBreaker) State() FleetState { return FleetState(b.word.Load()) }

// Members returns the number of live replicas the store last reported.
func (b *FleetBreaker) Members() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view.Members
}

// SetForce sets the fleet's kill switch in the store: ForceOpen holds
// messages on every replica, ForceClosed lets them all run, ForceNone
// gives the decision back to the window (after ForceOpen on a closed
// fleet, through a drain when DrainWindow is set, as after a recovery). Every replica follows within
// ReportEvery; this one at once.
func (b *FleetBreaker) SetForce(ctx context.Context, f Force) error {
	ff := fleet.ForceNone
	switch f {
	case ForceOpen:
		ff = fleet.ForceOpen
	case ForceClosed:
		ff = fleet.ForceClosed
	}
	if err := b.cfg.Store.SetForce(ctx, b.cfg.Key, ff); err != nil {
		return err
	}
	b.poke()
	return nil
}

// Close stops reporting (the counts since the last report are sent once,
// within the store timeout), fails waiting messages with ErrClosed and
// closes the drain's pool. It is idempotent and returns nil.
func (b *FleetBreaker) Close() error {
	b.closeMu.Do(func() {
		close(b.done)
		b.wg.Wait()
		_ = b.drain.Close()
		b.mu.Lock()
		degraded := b.degraded
		b.degraded = false
		b.mu.Unlock()
		if degraded {
			b.ctl.Released(b.cfg.Key)
		}
		if b.reg != nil {
			_ = b.reg.Unregister()
		}
	})
	return nil
}

func (b *FleetBreaker) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}
