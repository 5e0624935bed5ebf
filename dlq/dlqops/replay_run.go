package dlqops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/gcra"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

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
	// onItem, when set, sees every item (a canary replay's wave).
	onItem func(ReplayItem)
	// newIdentity: ReplaySelection.NewIdentity.
	newIdentity bool
	// edited: the run replays an edited payload (ReplayEdited).
	edited bool
	// token says the run holds a token of limiter taken before its last
	// claim and not spent yet (see step).
	token bool
}

// Reasons recorded on letters a run leaves for a later one.
const (
	reasonReplayedDuringRun = "dead-lettered again by a replay published during a running replay; a later run replays it"
	reasonForcedDuringRun   = "replayed during a running replay; a later forced run sends it again"
)

func (u *run) add(ctx context.Context, it ReplayItem) {
	u.rep.Processed++
	if u.onItem != nil {
		u.onItem(it)
	}
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

func (u *run) dryRun(ctx context.Context, f Filter) error {
	letters, err := u.dryRunLetters(ctx, f)
	if err != nil {
		return err
	}
	for i := range letters {
		dl := &letters[i]
		it := ReplayItem{ID: dl.ID, Group: dl.Fingerprint, Topic: dl.OriginalTopic, Outcome: OutcomeWouldReplay}
		err := u.r.check(dl)
		if err == nil {
			err = u.alreadyDone(ctx, dl) // a read: the dry run changes nothing
		}
		if err != nil {
			it.Outcome, it.Reason, it.Err = OutcomeHeld, err.Error(), err
		}
		u.add(ctx, it)
	}
	return nil
}

// dryRunLetters returns the letters of f in replay order (oldest first).
// Without a limit, a store that implements Browser is read a page of
// MaxPageSize letters at a time, each page a store call within the store's
// timeout: one List of 170,000 letters outlasted PostgreSQL's 5 s,
// so the runbook's dry run failed on the groups that need it most.
func (u *run) dryRunLetters(ctx context.Context, f Filter) ([]Record, error) {
	b, ok := u.r.store.(Browser)
	if !ok || f.Limit > 0 {
		return u.r.store.List(ctx, f)
	}
	q := PageQuery{Filter: f}
	q.Filter.Limit = MaxPageSize
	var letters []Record
	for {
		p, err := b.Page(ctx, q)
		if err != nil {
			return nil, err
		}
		letters = append(letters, p.Letters...)
		if p.Next == nil {
			slices.Reverse(letters) // the pages are newest first; replay order is oldest first
			return letters, nil
		}
		q.Before = p.Next
	}
}

func (u *run) loop(ctx context.Context, f Filter) error {
	var after *Cursor
	for {
		limit := u.r.cfg.batch
		if f.Limit > 0 {
			limit = min(limit, f.Limit-u.rep.Processed)
			if limit <= 0 {
				return nil
			}
		}
		n, err := u.step(ctx, f, &after, limit)
		if err != nil || n == 0 {
			return err
		}
	}
}

// step claims up to limit letters of f after *after, handles them and
// moves *after past them. It returns how many it claimed (0: none left).
func (u *run) step(ctx context.Context, f Filter, after **Cursor, limit int) (int, error) {
	r := u.r
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if u.limiter != nil {
		// A claimed letter must be published before its claim's lease
		// ends, or another run claims it too and both publish it. So the
		// token of the batch's first letter is taken before the claim, and
		// a claim takes no more letters than the velocity limit lets the
		// run publish in half the lease (at least one).
		if !u.token {
			if err := u.limiter.Take(ctx); err != nil {
				return 0, err
			}
			u.token = true
		}
		limit = min(limit, max(1, int(r.cfg.rate*r.cfg.lease.Seconds()/2)))
	}
	now := r.cfg.now()
	claimed, err := r.store.Claim(ctx, ClaimRequest{
		Filter: Filter{IDs: f.IDs, Group: f.Group, Topic: f.Topic, Handler: f.Handler,
			DLQTopic: f.DLQTopic, Statuses: f.Statuses, Since: f.Since, Until: f.Until},
		After: *after, Owner: r.cfg.owner, Now: now, Lease: r.cfg.lease, Limit: limit,
	})
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	k := u.keep(ctx, claimed)
	defer k.stop()
	for i := range claimed {
		if err := ctx.Err(); err != nil {
			// Stopped (Ctrl-C, SIGTERM): nothing more is sent, and the
			// claims not handled go back at once. Without a velocity
			// limit nothing else waits on ctx between two letters.
			u.releaseAll(claimed[i:])
			return 0, err
		}
		k.at(i)
		dl := &claimed[i]
		if reason := u.leave(dl, now); reason != "" {
			// Left for a later run, its status unchanged.
			if err := r.store.Release(ctx, dl.ID, r.cfg.owner, reason); err != nil {
				u.releaseAll(claimed[i+1:])
				return 0, err
			}
			continue
		}
		if err := u.one(ctx, dl); err != nil {
			u.releaseAll(claimed[i+1:])
			return 0, err
		}
	}
	last := claimed[len(claimed)-1]
	*after = &Cursor{At: last.FailedAt, ID: last.ID}
	return len(claimed), nil
}

// finishTimeout bounds the store calls that end a claim after the run's
// context ended (a release, or the mark of a letter already published).
const finishTimeout = 10 * time.Second

// releaseAll gives back claims a stopped run did not handle, even when its
// context ended.
func (u *run) releaseAll(rest []Record) {
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
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
//     (its dlq.KeyReplayOf and dlq.KeyReplayedAt, which the replayed message carried
//     into its dead letter, say it is a replay published at or after the
//     run's start); otherwise a run takes up another's replays and the two
//     loop until max replays;
//   - with Force, a letter marked replayed at or after the run's start
//     (Record.ReplayedAt, by whichever run sent it).
//
// Replay times come from each replayer's clock: across hosts the rule
// holds up to their clock skew. A dlq.KeyReplayedAt later than the claim time
// plus the lease is not a replay time (garbage or forged) and is ignored.
func (u *run) leave(dl *Record, claimedAt time.Time) string {
	if _, ok := u.sent[dl.UUID]; ok {
		return reasonReplayedDuringRun
	}
	if dl.Metadata[dlq.KeyReplayOf] != "" {
		if at, ok := dlq.ParseTime(dl.Metadata[dlq.KeyReplayedAt]); ok && !at.Before(u.start) && !at.After(claimedAt.Add(u.r.cfg.lease)) {
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
	err := r.check(dl)
	if err == nil {
		err = u.alreadyDone(ctx, dl)
	}
	if cerr := ctx.Err(); err != nil && cerr != nil {
		// interrupted (during the dedup check): not a reason to hold it;
		// given back, so another run takes it at once
		u.releaseAll([]Record{*dl})
		return cerr
	}
	if err != nil {
		it.Outcome, it.Reason, it.Err = OutcomeHeld, err.Error(), err
		if rerr := r.store.Release(ctx, dl.ID, r.cfg.owner, it.Reason); rerr != nil {
			return rerr
		}
		u.add(ctx, it)
		r.cfg.logger.Info("levee dlq replay: held", watermill.LogFields{"id": dl.ID, "reason": it.Reason})
		return nil
	}
	if u.token {
		u.token = false // taken before the claim (step)
	} else if u.limiter != nil {
		if err := u.limiter.Take(ctx); err != nil {
			u.releaseAll([]Record{*dl})
			return err
		}
	}
	now := r.cfg.now()
	msg := ReplayMessage(*dl, r.cfg.newUUID(), now)
	switch {
	case u.newIdentity:
		msg.Metadata[levee.KeyDedupID] = msg.UUID
	case u.edited && keyedIdentity(dl):
		// The consumer's key function gave the letter its identity (a
		// metadata key, a JSON pointer): it gives the edited payload's,
		// which the edit may have changed, so the replay carries none.
		delete(msg.Metadata, levee.KeyDedupID)
	}
	err = u.publish(ctx, dl, msg)
	if err != nil {
		// named, so an operator finds the letter that stopped the run
		// (a letter the broker refuses, too large, stops every run at it)
		perr := fmt.Errorf("%w: letter %q to %q: %w", ErrReplayPublish, dl.ID, dl.OriginalTopic, err)
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
	// The message is out: mark it even when the run was interrupted during
	// the publish (Ctrl-C, a console request whose client left), or the
	// letter stays claimed and is replayed again after the lease.
	if err := u.mark(ctx, dl.ID, msg.UUID, now); err != nil {
		// published but not marked: after the lease it may be sent again
		u.add(ctx, it)
		return fmt.Errorf("replayed %q but could not mark it (it stays claimed until its lease of %s ends, "+
			"then a replay sends it again): %w", dl.ID, r.cfg.lease, err)
	}
	u.add(ctx, it)
	return nil
}

// markRetry is the first pause before a failed mark is tried again; it
// doubles up to a second.
const markRetry = 100 * time.Millisecond

// mark marks a published letter replayed, trying again on a store error
// for up to finishTimeout, even when ctx ended: a store that stalls for a
// few seconds after a publish (each call outlasting the store's timeout)
// made the first failure stop the run with the letter published but not
// marked, and the next run after the lease published it a second time.
// A lost claim is not tried again; after a failed try it is the mark
// done when the letter is replayed by this replay (the failed try's
// UPDATE committed after its answer was lost: seen with PostgreSQL behind
// a stalled network).
func (u *run) mark(ctx context.Context, id, replayUUID string, at time.Time) error {
	r := u.r
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	pause := markRetry
	for tried := false; ; tried = true {
		err := r.store.MarkReplayed(mctx, id, r.cfg.owner, replayUUID, at)
		if tried && errors.Is(err, ErrClaimLost) {
			if dl, gerr := r.store.Get(mctx, id); gerr == nil && dl.Status == StatusReplayed && dl.ReplayUUID == replayUUID {
				return nil
			}
		}
		if err == nil || !errors.Is(err, ErrStore) {
			return err
		}
		r.cfg.logger.Error("levee dlq replay: marking a published replay failed; trying again", err, watermill.LogFields{"id": id})
		select {
		case <-mctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// publish publishes msg, the replay of dl, to its original topic, in the
// span of WithReplaySpan's hook when there is one.
func (u *run) publish(ctx context.Context, dl *Record, msg *message.Message) error {
	r := u.r
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
			span.SetAttributes(semconv.ErrorType(err))
			span.RecordError(err)
			span.SetStatus(codes.Error, "replay publish failed")
		}
		span.End()
	}
	return err
}
