package dlq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/gcra"
	"github.com/levee-dev/levee/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys written on replayed messages (besides KeyReplayCount, set
// to the letter's count plus one, KeyOriginalUUID, carried through, and
// levee.KeyOriginalTraceparent and levee.KeyOriginalTracestate, the dead
// letter's trace context).
const (
	// KeyReplayOf is the store ID of the dead letter this message replays.
	KeyReplayOf = "levee_replay_of"
	// KeyReplayedAt is the replay time (RFC 3339, nano, UTC).
	KeyReplayedAt = "levee_replayed_at"
)

// Replay errors. A letter held back keeps StatusNew and its reason in the
// store (Record.Reason).
var (
	// ErrMaxReplays holds back a letter replayed WithMaxReplays times
	// already.
	ErrMaxReplays = errors.New("levee/dlq: max replays reached")
	// ErrNoOriginalTopic holds back a letter without KeyOriginalTopic: there
	// is nowhere to replay it.
	ErrNoOriginalTopic = errors.New("levee/dlq: original topic missing, cannot replay")
	// ErrTopicNotAllowed holds back a letter whose original topic the
	// replayer may not publish to (WithReplayTopics).
	ErrTopicNotAllowed = errors.New("levee/dlq: replay topic not allowed")
	// ErrRevalidation holds back a letter whose payload fails the
	// validator.
	ErrRevalidation = errors.New("levee/dlq: payload failed re-validation")
	// ErrReplayPublish is wrapped when publishing a replay failed; the run
	// stops and the letter stays dead.
	ErrReplayPublish = errors.New("levee/dlq: replay publish failed")
)

// Replay outcomes of ReplayItem.Outcome.
const (
	OutcomeReplayed    = "replayed"     // published and marked replayed
	OutcomeWouldReplay = "would_replay" // dry run: would be published
	OutcomeHeld        = "held"         // left dead with a reason
	OutcomeFailed      = "failed"       // publish failed
)

// ReplaySelection is what a replay run takes.
type ReplaySelection struct {
	// Filter selects letters by ids, group, topic, handler, DLQ topic or
	// FailedAt range; Filter.Limit bounds how many are handled. Its
	// Statuses are ignored: a run takes StatusNew letters, and with Force
	// StatusReplayed ones too. Archived letters are never replayed.
	Filter Filter
	// DryRun reports what would happen without claiming or publishing.
	DryRun bool
	// Force replays letters already replayed (sending them again). Max
	// replays still applies.
	Force bool
}

// ReplayItem is the result for one letter.
type ReplayItem struct {
	ID         string `json:"id"`
	Group      string `json:"group"`
	Topic      string `json:"topic"`
	Outcome    string `json:"outcome"`
	ReplayUUID string `json:"replay_uuid,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Err is the cause of a held or failed outcome (wrapping ErrMaxReplays,
	// ErrNoOriginalTopic, ErrTopicNotAllowed, ErrRevalidation or
	// ErrReplayPublish).
	Err error `json:"-"`
}

// MaxReportItems bounds ReplayReport.Items; the counts are always complete.
const MaxReportItems = 10000

// ReplayReport summarises a run.
type ReplayReport struct {
	DryRun    bool          `json:"dry_run"`
	Processed int           `json:"processed"`
	Replayed  int           `json:"replayed"` // or would be, in a dry run
	Held      int           `json:"held"`
	Failed    int           `json:"failed"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Items     []ReplayItem  `json:"items"`
	Truncated bool          `json:"truncated"` // Items stopped at MaxReportItems
}

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
	cfg   replayConfig
	ctr   metric.Int64Counter
	opts  map[string]metric.MeasurementOption
}

// NewReplayer returns a Replayer taking letters from store and publishing
// with pub (pub may be nil for a replayer used only for dry runs). It
// returns an error wrapping ErrInvalidConfig for a nil store or an invalid
// option.
func NewReplayer(store Store, pub message.Publisher, opts ...ReplayOption) (*Replayer, error) {
	c := newReplayConfig(opts)
	if store == nil {
		return nil, fmt.Errorf("%w: replayer without a store", ErrInvalidConfig)
	}
	if err := c.validate(); err != nil {
		return nil, err
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
		return fmt.Errorf("%w: dead letter %q has no %s", ErrNoOriginalTopic, dl.ID, KeyOriginalTopic)
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
	if dl.DLQTopic != dl.OriginalTopic+dlqSuffix {
		return fmt.Errorf("%w: %q from DLQ topic %q; without replay topics only a letter from %q may go back to it",
			ErrTopicNotAllowed, dl.OriginalTopic, dl.DLQTopic, dl.OriginalTopic+dlqSuffix)
	}
	return nil
}

type run struct {
	r       *Replayer
	rep     ReplayReport
	start   time.Time
	limiter *gcra.Bucket
	// sent holds the UUIDs of the messages this run published: a replayed
	// message that fails again is dead-lettered while the run goes on, and
	// the run must not take that letter up again (it would replay it in a
	// loop until max replays within one run).
	sent map[string]struct{}
}

// Reasons recorded on letters a run leaves for a later one.
const (
	reasonReplayedDuringRun = "dead-lettered again by a replay published during a running replay; a later run replays it"
	reasonForcedDuringRun   = "replayed during a running replay; a later forced run sends it again"
)

func (u *run) add(ctx context.Context, it ReplayItem) {
	u.rep.Processed++
	switch it.Outcome {
	case OutcomeReplayed, OutcomeWouldReplay:
		u.rep.Replayed++
	case OutcomeHeld:
		u.rep.Held++
	case OutcomeFailed:
		u.rep.Failed++
	}
	if !u.rep.DryRun {
		u.r.ctr.Add(ctx, 1, u.r.opts[it.Outcome])
	}
	if len(u.rep.Items) < MaxReportItems {
		u.rep.Items = append(u.rep.Items, it)
	} else {
		u.rep.Truncated = true
	}
	u.rep.Elapsed = u.r.cfg.now().Sub(u.start)
	if u.r.cfg.progress != nil {
		u.r.cfg.progress(ReplayProgress{Processed: u.rep.Processed, Replayed: u.rep.Replayed,
			Held: u.rep.Held, Failed: u.rep.Failed, Elapsed: u.rep.Elapsed})
	}
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
	u := &run{r: r, start: r.cfg.now(), rep: ReplayReport{DryRun: sel.DryRun}}
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

func (u *run) dryRun(ctx context.Context, f Filter) error {
	letters, err := u.r.store.List(ctx, f)
	if err != nil {
		return err
	}
	for i := range letters {
		dl := &letters[i]
		it := ReplayItem{ID: dl.ID, Group: dl.Fingerprint, Topic: dl.OriginalTopic, Outcome: OutcomeWouldReplay}
		if err := u.r.check(dl); err != nil {
			it.Outcome, it.Reason, it.Err = OutcomeHeld, err.Error(), err
		}
		u.add(ctx, it)
	}
	return nil
}

func (u *run) loop(ctx context.Context, f Filter) error {
	r := u.r
	var after *Cursor
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		limit := r.cfg.batch
		if f.Limit > 0 {
			limit = min(limit, f.Limit-u.rep.Processed)
			if limit <= 0 {
				return nil
			}
		}
		now := r.cfg.now()
		claimed, err := r.store.Claim(ctx, ClaimRequest{
			Filter: Filter{IDs: f.IDs, Group: f.Group, Topic: f.Topic, Handler: f.Handler,
				DLQTopic: f.DLQTopic, Statuses: f.Statuses, Since: f.Since, Until: f.Until},
			After: after, Owner: r.cfg.owner, Now: now, Lease: r.cfg.lease, Limit: limit,
		})
		if err != nil {
			return err
		}
		if len(claimed) == 0 {
			return nil
		}
		for i := range claimed {
			dl := &claimed[i]
			if reason := u.leave(dl, now); reason != "" {
				// Left for a later run, its status unchanged.
				if err := r.store.Release(ctx, dl.ID, r.cfg.owner, reason); err != nil {
					u.releaseAll(claimed[i+1:])
					return err
				}
				continue
			}
			if err := u.one(ctx, dl); err != nil {
				u.releaseAll(claimed[i+1:])
				return err
			}
		}
		last := claimed[len(claimed)-1]
		after = &Cursor{At: last.FailedAt, ID: last.ID}
	}
}

// releaseAll gives back claims a stopped run did not handle, even when its
// context ended.
func (u *run) releaseAll(rest []Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dl := range rest {
		if err := u.r.store.Release(ctx, dl.ID, u.r.cfg.owner, dl.Reason); err != nil {
			u.r.cfg.logger.Error("levee dlq replay: release failed; the claim expires after the lease", err,
				watermill.LogFields{"id": dl.ID})
		}
	}
}

// leave returns why the run must leave dl for a later run, or "". Runs of
// one or several replayers may go on at once; between them each letter is
// replayed at most once per run, so a run leaves
//
//   - the dead letter of a message replayed after the run started, by this
//     run (its UUID is one the run published) or by any other replayer
//     (its KeyReplayOf and KeyReplayedAt, which the replayed message carried
//     into its dead letter, say it is a replay published at or after the
//     run's start); otherwise a run takes up another's replays and the two
//     loop until max replays;
//   - with Force, a letter marked replayed at or after the run's start
//     (Record.ReplayedAt, by whichever run sent it).
//
// Replay times come from each replayer's clock: across hosts the rule
// holds up to their clock skew. A KeyReplayedAt later than the claim time
// plus the lease is not a replay time (garbage or forged) and is ignored.
func (u *run) leave(dl *Record, claimedAt time.Time) string {
	if _, ok := u.sent[dl.UUID]; ok {
		return reasonReplayedDuringRun
	}
	if dl.Metadata[KeyReplayOf] != "" {
		if at, ok := ParseTime(dl.Metadata[KeyReplayedAt]); ok && !at.Before(u.start) && !at.After(claimedAt.Add(u.r.cfg.lease)) {
			return reasonReplayedDuringRun
		}
	}
	if dl.Status == StatusReplayed && !dl.ReplayedAt.Before(u.start) {
		return reasonForcedDuringRun
	}
	return ""
}

// one handles one claimed letter; a non-nil error stops the run (the
// letter's own claim is already released).
func (u *run) one(ctx context.Context, dl *Record) error {
	r := u.r
	it := ReplayItem{ID: dl.ID, Group: dl.Fingerprint, Topic: dl.OriginalTopic}
	if err := r.check(dl); err != nil {
		it.Outcome, it.Reason, it.Err = OutcomeHeld, err.Error(), err
		if rerr := r.store.Release(ctx, dl.ID, r.cfg.owner, it.Reason); rerr != nil {
			return rerr
		}
		u.add(ctx, it)
		r.cfg.logger.Info("levee dlq replay: held", watermill.LogFields{"id": dl.ID, "reason": it.Reason})
		return nil
	}
	if u.limiter != nil {
		if err := u.limiter.Take(ctx); err != nil {
			u.releaseAll([]Record{*dl})
			return err
		}
	}
	now := r.cfg.now()
	msg := ReplayMessage(*dl, r.cfg.newUUID(), now)
	pctx := ctx
	var span trace.Span
	if r.cfg.startSpan != nil {
		// the hook (tracing.Tracer.StartReplay) moves the traceparent itself
		// and links its replay span to it
		if tp := msg.Metadata[levee.KeyOriginalTraceparent]; tp != "" {
			msg.Metadata[keyTraceparent] = tp
			delete(msg.Metadata, levee.KeyOriginalTraceparent)
			if ts := msg.Metadata[levee.KeyOriginalTracestate]; ts != "" {
				msg.Metadata[keyTracestate] = ts
			}
		}
		pctx, span = r.cfg.startSpan(ctx, dl.OriginalTopic, msg)
		if msg.Metadata[levee.KeyOriginalTraceparent] == "" && dl.Metadata[keyTraceparent] != "" {
			msg.Metadata[levee.KeyOriginalTraceparent] = dl.Metadata[keyTraceparent]
		}
	}
	msg.SetContext(pctx)
	err := r.pub.Publish(dl.OriginalTopic, msg)
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "replay publish failed")
		}
		span.End()
	}
	if err != nil {
		perr := fmt.Errorf("%w to %q: %w", ErrReplayPublish, dl.OriginalTopic, err)
		it.Outcome, it.Reason, it.Err = OutcomeFailed, perr.Error(), perr
		u.add(ctx, it)
		u.releaseAll([]Record{{ID: dl.ID, Reason: perr.Error()}})
		return perr
	}
	it.Outcome, it.ReplayUUID = OutcomeReplayed, msg.UUID
	if u.sent == nil {
		u.sent = map[string]struct{}{}
	}
	u.sent[msg.UUID] = struct{}{}
	if err := r.store.MarkReplayed(ctx, dl.ID, r.cfg.owner, msg.UUID, now); err != nil {
		// published but not marked: after the lease it may be sent again
		u.add(ctx, it)
		return fmt.Errorf("replayed %q but could not mark it: %w", dl.ID, err)
	}
	u.add(ctx, it)
	return nil
}

// W3C trace context keys in metadata.
const (
	keyTraceparent = "traceparent"
	keyTracestate  = "tracestate"
)

// ReplayMessage builds the message that replays dl: a new UUID, the payload
// byte for byte, the letter's metadata without the failure keys, the
// transport's delivery count or the trace context, plus the lineage:
// KeyReplayCount (dl.ReplayCount+1), KeyOriginalUUID, KeyReplayOf,
// KeyReplayedAt and the old trace context under levee.KeyOriginalTraceparent and
// levee.KeyOriginalTracestate.
func ReplayMessage(dl Record, uuid string, now time.Time) *message.Message {
	msg := message.NewMessage(uuid, append([]byte(nil), dl.Payload...))
	md := maps.Clone(dl.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	for _, k := range failureKeys {
		delete(md, k)
	}
	levee.StripControl(md)
	delete(md, levee.KeyOriginalTraceparent)
	delete(md, levee.KeyOriginalTracestate)
	if tp := md[keyTraceparent]; tp != "" {
		md[levee.KeyOriginalTraceparent] = tp
		if ts := md[keyTracestate]; ts != "" {
			md[levee.KeyOriginalTracestate] = ts
		}
	}
	delete(md, keyTraceparent)
	delete(md, keyTracestate)
	md[KeyReplayCount] = strconv.Itoa(dl.ReplayCount + 1)
	md[KeyOriginalUUID] = dl.OriginalUUID
	md[KeyReplayOf] = dl.ID
	md[KeyReplayedAt] = FormatTime(now)
	msg.Metadata = md
	return msg
}
