package dlqops

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures the package's constructors: NewMonitor, NewReplayer,
// NewPruner and NewGroupGauges. Options are applied in order; a later one
// overrides an earlier one. The options shared by several of them
// (WithClock, WithLogger, WithMeterProvider, WithStoreTimeout) have one
// name; each other option serves one constructor, which its doc names. A
// constructor given an option it does not take returns an error wrapping
// ErrInvalidConfig (say, WithReplayRate passed to NewMonitor), so a
// misplaced option is never silently ignored.
type Option interface{ apply(*config) }

// user is a constructor of the package; an option says which it serves.
type user uint8

const (
	forMonitor user = 1 << iota
	forReplayer
	forPruner
	forGauges
)

func (u user) String() string {
	switch u {
	case forMonitor:
		return "NewMonitor"
	case forReplayer:
		return "NewReplayer"
	case forPruner:
		return "NewPruner"
	}
	return "NewGroupGauges"
}

type option struct {
	name   string
	serves user
	set    func(*config)
}

func (o option) apply(c *config) {
	if o.serves&c.user == 0 && c.misplaced == nil {
		c.misplaced = fmt.Errorf("%w: %s does not take %s", ErrInvalidConfig, c.user, o.name)
	}
	o.set(c)
}

// config holds what the options set, for every constructor; each reads
// its own fields.
type config struct {
	user      user
	misplaced error // the first option given to a constructor it does not serve

	now    func() time.Time
	logger watermill.LoggerAdapter
	mp     metric.MeterProvider
	// storeTimeout bounds one Monitor.Handle or Record, and one gauge
	// collection's query.
	storeTimeout time.Duration

	// Monitor
	retryAfter time.Duration
	batchRows  int

	// Replayer
	topics     map[string]bool // nil: the default pairing (see WithReplayTopics)
	badTopic   error           // an invalid WithReplayTopics entry
	rate       float64
	maxReplays int
	validator  Validator
	doneCheck  func(ctx context.Context, handler, identity string) (bool, error)
	owner      string
	lease      time.Duration
	batch      int
	newUUID    func() string
	progress   func(ReplayProgress)
	startSpan  func(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span)

	// GroupGauges
	window      time.Duration
	minInterval time.Duration
	maxGroups   int
}

// newConfig applies opts for the constructor u over the defaults and fills
// in what nil means.
func newConfig(u user, opts []Option) config {
	c := config{
		user:         u,
		now:          time.Now,
		storeTimeout: DefaultStoreTimeout,
		retryAfter:   DefaultMonitorRetryAfter,
		batchRows:    DefaultMonitorBatchRows,
		rate:         DefaultReplayRate,
		maxReplays:   DefaultMaxReplays,
		lease:        DefaultReplayLease,
		batch:        DefaultReplayBatch,
		window:       DefaultGaugeWindow,
		minInterval:  DefaultGaugeMinInterval,
		maxGroups:    DefaultGaugeMaxGroups,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = watermill.NopLogger{}
	}
	if c.newUUID == nil {
		c.newUUID = watermill.NewUUID
	}
	if u == forReplayer && c.owner == "" {
		host, _ := os.Hostname()
		c.owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + watermill.NewShortUUID()
	}
	return c
}

// WithClock sets the clock of any constructor: the Monitor stamps
// ReceivedAt (and FailedAt when the letter has no usable failure time)
// with it, the Replayer its claims and dlq.KeyReplayedAt, the Pruner
// measures the retention against it and GroupGauges the window and ages.
// Default time.Now; nil means the default.
func WithClock(now func() time.Time) Option {
	return option{"WithClock", forMonitor | forReplayer | forPruner | forGauges, func(c *config) { c.now = now }}
}

// WithLogger sets the logger of NewMonitor (store failures at error level,
// records at debug), NewReplayer (held letters at info, failed releases at
// error) and NewPruner (deletions at info, failures at error). Default
// none; nil means none.
func WithLogger(l watermill.LoggerAdapter) Option {
	return option{"WithLogger", forMonitor | forReplayer | forPruner, func(c *config) { c.logger = l }}
}

// WithMeterProvider sets the meter provider of NewMonitor's counters,
// NewReplayer's counter and NewGroupGauges' gauges (docs/TELEMETRY.md, ##
// dlq operations). Default none (no-op instruments); nil means none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return option{"WithMeterProvider", forMonitor | forReplayer | forGauges, func(c *config) { c.mp = mp }}
}

// WithStoreTimeout sets the deadline of one store call: for NewMonitor,
// one Handle or Record (the wait for a group commit and the Store.Add
// together; when it passes, the call returns a *MonitorStoreError, the
// letter is Nacked and counted in levee.dlq.monitor.store_errors); for
// NewGroupGauges, the store query of one collection. Default
// DefaultStoreTimeout (5s); pass StoreConfig.StoreTimeout() to follow the
// `store: timeout` key; zero or negative is invalid.
func WithStoreTimeout(d time.Duration) Option {
	return option{"WithStoreTimeout", forMonitor | forGauges, func(c *config) { c.storeTimeout = d }}
}
