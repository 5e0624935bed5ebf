package dlqops

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/gcra"
	"github.com/levee-dev/levee/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Replay errors. A letter held back keeps StatusNew and its reason in the
// store (Record.Reason).
var (
	// ErrMaxReplays holds back a letter replayed WithMaxReplays times
	// already.
	ErrMaxReplays = errors.New("levee/dlqops: max replays reached")
	// ErrNoOriginalTopic holds back a letter without dlq.KeyOriginalTopic: there
	// is nowhere to replay it.
	ErrNoOriginalTopic = errors.New("levee/dlqops: original topic missing, cannot replay")
	// ErrTopicNotAllowed holds back a letter whose original topic the
	// replayer may not publish to (WithReplayTopics).
	ErrTopicNotAllowed = errors.New("levee/dlqops: replay topic not allowed")
	// ErrRevalidation holds back a letter whose payload fails the
	// validator.
	ErrRevalidation = errors.New("levee/dlqops: payload failed re-validation")
	// ErrReplayPublish is wrapped when publishing a replay failed; the run
	// stops and the letter stays dead.
	ErrReplayPublish = errors.New("levee/dlqops: replay publish failed")
)

// Replayer republishes dead letters to their original topics, safely: at a
// bounded velocity, at most WithMaxReplays times per message, re-validated,
// with lineage, and never twice (each letter is claimed atomically in the
// store, published, then marked replayed; a crashed run's claims expire
// after the lease and a new run resumes). The window between a publish
// and its mark is the only at-least-once gap: a crash inside it replays
// that one letter again after the lease. A Replayer is safe for concurrent
// use; concurrent runs (in one or several processes) share the work and
// replay each letter at most once between them: a run leaves the dead
// letters of replays published after it started, by whichever replayer,
// for a later run (see the rule on letters replayed during a run in
// docs/OPERATIONS.md). It publishes only to the topics WithReplayTopics
// allows.
type Replayer struct {
	store Store
	pub   message.Publisher
	cfg   config
	ctr   metric.Int64Counter
	opts  map[string]metric.MeasurementOption
}

// NewReplayer returns a Replayer taking letters from store and publishing
// with pub (pub may be nil for a replayer used only for dry runs). It takes
// WithClock, WithLogger, WithMeterProvider and the WithReplay* options and
// WithMaxReplays. It returns an error wrapping ErrInvalidConfig for a nil
// store, an invalid option or one it does not take.
func NewReplayer(store Store, pub message.Publisher, opts ...Option) (*Replayer, error) {
	c := newConfig(forReplayer, opts)
	if err := c.validateReplayer(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: replayer without a store", ErrInvalidConfig)
	}
	ctr, err := telemetry.Meter(c.mp).Int64Counter(telemetry.Name("dlq", "replay.messages"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Dead letters handled by replay runs, by outcome (replayed, held, failed)."))
	if err != nil {
		return nil, err
	}
	r := &Replayer{store: store, pub: pub, cfg: c, ctr: ctr, opts: map[string]metric.MeasurementOption{}}
	for _, o := range []string{OutcomeReplayed, OutcomeHeld, OutcomeFailed} {
		r.opts[o] = metric.WithAttributeSet(attribute.NewSet(attrOutcome.String(o)))
	}
	return r, nil
}

// Owner returns the name this replayer claims letters under.
func (r *Replayer) Owner() string { return r.cfg.owner }

// check returns why dl must stay dead, or nil.
func (r *Replayer) check(dl *Record) error {
	if dl.ReplayCount >= r.cfg.maxReplays {
		return fmt.Errorf("%w: replayed %d times, limit %d", ErrMaxReplays, dl.ReplayCount, r.cfg.maxReplays)
	}
	if dl.OriginalTopic == "" {
		return fmt.Errorf("%w: dead letter %q has no %s", ErrNoOriginalTopic, dl.ID, dlq.KeyOriginalTopic)
	}
	if err := r.topicAllowed(dl); err != nil {
		return err
	}
	if r.cfg.validator != nil {
		if err := r.cfg.validator(dl.OriginalTopic, dl.Payload); err != nil {
			return fmt.Errorf("%w for topic %q: %w", ErrRevalidation, dl.OriginalTopic, err)
		}
	}
	return nil
}

// topicAllowed returns why dl may not be replayed to its original topic,
// or nil (see WithReplayTopics).
func (r *Replayer) topicAllowed(dl *Record) error {
	if r.cfg.topics != nil {
		if !r.cfg.topics[dl.OriginalTopic] {
			return fmt.Errorf("%w: %q is not a replay topic", ErrTopicNotAllowed, dl.OriginalTopic)
		}
		return nil
	}
	if dl.DLQTopic != dlq.DefaultTopic(dl.OriginalTopic) {
		return fmt.Errorf("%w: %q from DLQ topic %q; without replay topics only a letter from %q may go back to it",
			ErrTopicNotAllowed, dl.OriginalTopic, dl.DLQTopic, dlq.DefaultTopic(dl.OriginalTopic))
	}
	return nil
}

// Replay runs one replay over sel and returns its report. The error is
// non-nil when the run stopped early: the store failed (ErrStore), a
// publish failed (ErrReplayPublish; the letter stays dead), or ctx ended.
// Letters claimed but not handled are released at once. Held letters are
// not an error: they are in the report with their reason.
func (r *Replayer) Replay(ctx context.Context, sel ReplaySelection) (ReplayReport, error) {
	f := sel.Filter
	f.Statuses = []Status{StatusNew}
	if sel.Force {
		f.Statuses = append(f.Statuses, StatusReplayed)
	}
	if err := f.Validate(); err != nil {
		return ReplayReport{}, err
	}
	u := &run{r: r, start: r.cfg.now(), rep: ReplayReport{DryRun: sel.DryRun}, newIdentity: sel.NewIdentity}
	if sel.DryRun {
		return u.rep, u.dryRun(ctx, f)
	}
	if r.pub == nil {
		return u.rep, fmt.Errorf("%w: replayer has no publisher", ErrInvalidConfig)
	}
	if r.cfg.rate > 0 {
		l := gcra.New(false, r.cfg.rate, 1, gcra.DefaultCatchUp)
		defer l.Close()
		u.limiter = l
	}
	err := u.loop(ctx, f)
	return u.rep, err
}
