package dlqops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/levee-dev/levee/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// GroupGauges publishes per-group OpenTelemetry observable gauges read from
// a Store at collection time (no goroutine of its own):
//
//   - levee.dlq.group.dead_letters {group, status}: letters per status;
//   - levee.dlq.group.new_in_window {group}: arrivals in the window;
//   - levee.dlq.group.oldest_age {group} (s): age of the oldest letter still
//     new, only for groups with one;
//   - levee.dlq.group.age {group} (s): time since the group's first letter
//     (its FirstSeen), whatever its letters' status.
//
// The alert rules in docs/alerts/levee-dlq.rules.yml read them. When the
// store fails, a collection reports the last groups read (ages advancing)
// and returns the error to the SDK, rather than no series. A
// GroupGauges is safe for concurrent use; Close unregisters the callback.
type GroupGauges struct {
	store Store
	cfg   config
	reg   metric.Registration

	mu       sync.Mutex
	cached   []Group   // guarded by mu
	cachedAt time.Time // guarded by mu
	closed   bool      // guarded by mu
}

// GroupGauges defaults (the store query's deadline is WithStoreTimeout's,
// DefaultStoreTimeout).
const (
	DefaultGaugeWindow      = 5 * time.Minute
	DefaultGaugeMinInterval = 15 * time.Second
	DefaultGaugeMaxGroups   = 100
)

// OtherGroup is the group attribute that sums groups beyond the
// WithGaugeMaxGroups largest.
const OtherGroup = "other"

// WithGaugeWindow sets the window of NewGroupGauges' new_in_window.
// Default 5m; it must be positive.
func WithGaugeWindow(d time.Duration) Option {
	return option{"WithGaugeWindow", forGauges, func(c *config) { c.window = d }}
}

// WithGaugeMinInterval sets how long NewGroupGauges reuses a store query
// result across collections, bounding the load of frequent scrapes on a
// large store. Default 15s; zero queries on every collection; negative is
// invalid.
func WithGaugeMinInterval(d time.Duration) Option {
	return option{"WithGaugeMinInterval", forGauges, func(c *config) { c.minInterval = d }}
}

// WithGaugeMaxGroups bounds the cardinality of NewGroupGauges' group
// attribute: the n largest groups are reported by name, the rest summed as
// OtherGroup. Default 100; it must be positive.
func WithGaugeMaxGroups(n int) Option {
	return option{"WithGaugeMaxGroups", forGauges, func(c *config) { c.maxGroups = n }}
}

// NewGroupGauges registers the gauges on the meter of WithMeterProvider
// (without it, on a no-op meter: nothing is collected). It takes
// WithClock, WithMeterProvider, WithStoreTimeout, WithGaugeWindow,
// WithGaugeMinInterval and WithGaugeMaxGroups. It returns an error wrapping
// ErrInvalidConfig for a nil store, an invalid option or one it does not
// take, or the meter's error.
func NewGroupGauges(store Store, opts ...Option) (*GroupGauges, error) {
	c := newConfig(forGauges, opts)
	switch {
	case c.misplaced != nil:
		return nil, c.misplaced
	case store == nil:
		return nil, fmt.Errorf("%w: gauges without a store", ErrInvalidConfig)
	case c.window <= 0:
		return nil, fmt.Errorf("%w: gauge window %s must be positive", ErrInvalidConfig, c.window)
	case c.minInterval < 0:
		return nil, fmt.Errorf("%w: gauge min interval %s is negative", ErrInvalidConfig, c.minInterval)
	case c.storeTimeout <= 0:
		return nil, fmt.Errorf("%w: gauge store timeout %s must be positive", ErrInvalidConfig, c.storeTimeout)
	case c.maxGroups <= 0:
		return nil, fmt.Errorf("%w: gauge max groups %d must be positive", ErrInvalidConfig, c.maxGroups)
	}
	m := telemetry.Meter(c.mp)
	total, err := m.Int64ObservableGauge(telemetry.Name("dlq", "group.dead_letters"), metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Stored dead letters per failure group and status."))
	if err != nil {
		return nil, err
	}
	inWindow, err := m.Int64ObservableGauge(telemetry.Name("dlq", "group.new_in_window"), metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Dead letters per failure group that failed within the window."))
	if err != nil {
		return nil, err
	}
	oldest, err := m.Float64ObservableGauge(telemetry.Name("dlq", "group.oldest_age"), metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Age of the oldest dead letter per failure group that is still new (not replayed or archived)."))
	if err != nil {
		return nil, err
	}
	age, err := m.Float64ObservableGauge(telemetry.Name("dlq", "group.age"), metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Time since the first dead letter of the failure group (its first-seen time in the store)."))
	if err != nil {
		return nil, err
	}
	g := &GroupGauges{store: store, cfg: c}
	g.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		// on a failed read, the last groups read and the error (which the
		// SDK hands to otel.Handle): see groups
		groups, now, err := g.groups(ctx)
		for _, gr := range groups {
			a := attrGroup.String(gr.Key)
			for _, s := range []struct {
				st Status
				n  int
			}{{StatusNew, gr.New}, {StatusReplayed, gr.Replayed}, {StatusArchived, gr.Archived}} {
				o.ObserveInt64(total, int64(s.n), metric.WithAttributes(a, attrStatus.String(string(s.st))))
			}
			o.ObserveInt64(inWindow, int64(gr.InWindow), metric.WithAttributes(a))
			if !gr.OldestNew.IsZero() {
				o.ObserveFloat64(oldest, max(0, now.Sub(gr.OldestNew).Seconds()), metric.WithAttributes(a))
			}
			if !gr.FirstSeen.IsZero() {
				o.ObserveFloat64(age, max(0, now.Sub(gr.FirstSeen).Seconds()), metric.WithAttributes(a))
			}
		}
		return err
	}, total, inWindow, oldest, age)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Attribute keys of the group gauges.
const (
	attrGroup  = attribute.Key("group")
	attrStatus = attribute.Key("status")
)

// groups returns the (possibly cached) groups, folded to maxGroups. When
// the store fails it returns the last groups read with the error, so a
// store that is down or slower than its timeout does not drop the series:
// Prometheus would mark them stale and resolve the alerts that read them,
// and a `for:` (LeveeDLQOldestDeadLetter's 10m) would start over at every
// failed scrape. LeveeDLQMonitorStoreErrors tells of the outage.
func (g *GroupGauges) groups(ctx context.Context) ([]Group, time.Time, error) {
	now := g.cfg.now()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, now, nil
	}
	if g.cached != nil && g.cfg.minInterval > 0 && now.Sub(g.cachedAt) < g.cfg.minInterval {
		out := g.cached
		g.mu.Unlock()
		return out, now, nil
	}
	g.mu.Unlock()
	qctx, cancel := context.WithTimeout(ctx, g.cfg.storeTimeout)
	defer cancel()
	groups, err := g.read(qctx, now)
	if err != nil {
		g.mu.Lock()
		last := g.cached
		g.mu.Unlock()
		return last, now, err
	}
	g.mu.Lock()
	g.cached, g.cachedAt = groups, now
	g.mu.Unlock()
	return groups, now, nil
}

// read asks the store for the maxGroups largest groups, folding the rest
// into OtherGroup. A GroupSummer store returns the largest and their sum
// past them (two queries that read what they return); another store
// returns every group, folded here.
func (g *GroupGauges) read(ctx context.Context, now time.Time) ([]Group, error) {
	n := g.cfg.maxGroups
	q := GroupQuery{By: GroupByFingerprint, WindowStart: now.Add(-g.cfg.window)}
	summer, ok := g.store.(GroupSummer)
	if !ok {
		groups, err := g.store.Groups(ctx, q)
		if err != nil {
			return nil, err
		}
		return foldGroups(groups, n), nil
	}
	q.Limit = n + 1 // one more tells whether there is a rest to fold
	top, err := g.store.Groups(ctx, q)
	if err != nil || len(top) <= n {
		return top, err
	}
	q.Limit, q.Offset = 0, n-1
	other, err := summer.SumGroups(ctx, q)
	if err != nil {
		return nil, err
	}
	other.Key, other.By = OtherGroup, GroupByFingerprint
	return append(top[:n-1], other), nil
}

// foldGroups keeps the n largest of groups (sorted as Store.Groups returns
// them) and sums the rest into one OtherGroup entry.
func foldGroups(groups []Group, n int) []Group {
	if len(groups) <= n {
		return groups
	}
	return append(groups[:n-1:n-1], SumGroups(groups[n-1:], OtherGroup, groups[0].By))
}

// Close unregisters the gauges; it is idempotent.
func (g *GroupGauges) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	return g.reg.Unregister()
}
