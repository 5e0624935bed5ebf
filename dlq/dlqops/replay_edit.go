package dlqops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ReplayEdited replays one new letter with payload in place of its own: the
// edit passes the same checks as a replay (max replays, allowed topic, and
// the validator, run on the edited payload: a JSON Schema of the topic
// rejects a bad edit before anything is published), is published with the
// letter's lineage, and the letter is marked replayed. Its dedup identity
// is the letter's when that was the message's UUID; one the consumer's key
// function gave (a metadata key, a JSON pointer) is left to the key
// function, which reads it from the edited message. The stored letter
// keeps its original payload; when the store is a Browser the edit is
// added to its events (EventEdited, with the edited payload's size and
// SHA-256) under actor. A held edit returns the held item and its error
// (ErrRevalidation, ErrTopicNotAllowed, ...); an edit the validator
// refuses leaves the letter as it was, its reason included; a letter that is not new, or
// is claimed, gives an error wrapping ErrNotFound.
func (r *Replayer) ReplayEdited(ctx context.Context, id string, payload []byte, actor string) (ReplayItem, error) {
	if r.pub == nil {
		return ReplayItem{}, fmt.Errorf("%w: replayer has no publisher", ErrInvalidConfig)
	}
	now := r.cfg.now()
	claimed, err := r.store.Claim(ctx, ClaimRequest{Filter: Filter{IDs: []string{id}, Statuses: []Status{StatusNew}},
		Owner: r.cfg.owner, Now: now, Lease: r.cfg.lease, Limit: 1})
	if err != nil {
		return ReplayItem{}, err
	}
	if len(claimed) == 0 {
		return ReplayItem{}, fmt.Errorf("%w: %q is not a new, unclaimed letter", ErrNotFound, id)
	}
	dl := claimed[0]
	if r.cfg.validator != nil {
		// A refused edit is the edit's failure, not the letter's: the
		// letter goes back as it was, its reason too (recording the
		// schema's error on it said its own payload fails the schema).
		if verr := r.cfg.validator(dl.OriginalTopic, payload); verr != nil {
			err := fmt.Errorf("%w for topic %q: %w", ErrRevalidation, dl.OriginalTopic, verr)
			if rerr := r.store.Release(ctx, dl.ID, r.cfg.owner, dl.Reason); rerr != nil {
				return ReplayItem{}, rerr
			}
			return ReplayItem{ID: dl.ID, Group: dl.Fingerprint, Topic: dl.OriginalTopic, Outcome: OutcomeHeld, Reason: err.Error(), Err: err}, err
		}
	}
	dl.Payload = payload
	var got ReplayItem
	u := &run{r: r, start: now, edited: true, onItem: func(it ReplayItem) { got = it }}
	k := u.keep(ctx, claimed)
	err = u.one(ctx, &dl)
	k.stop()
	if err != nil {
		return got, err
	}
	if got.Outcome != OutcomeReplayed {
		return got, got.Err
	}
	if b, ok := r.store.(Browser); ok {
		sum := sha256.Sum256(payload)
		if actor == "" {
			actor = r.cfg.owner
		}
		ev := Event{LetterID: id, At: now, Actor: actor, Action: EventEdited, ReplayUUID: got.ReplayUUID,
			Detail: fmt.Sprintf("published an edited payload (%d bytes, sha256 %s)", len(payload), hex.EncodeToString(sum[:8]))}
		// the edit is out: record it even when ctx ended during the publish
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		defer cancel()
		if err := b.AddEvent(ectx, ev); err != nil {
			return got, err
		}
	}
	return got, nil
}
