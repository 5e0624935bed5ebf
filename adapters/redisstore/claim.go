package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// Claim implements dlqops.Store. The script walks the smallest matching index
// in replay order and, in the same atomic step, takes each letter that has
// no claim or whose lease ended, setting owner and lease end.
func (s *Store) Claim(ctx context.Context, r dlqops.ClaimRequest) ([]dlqops.Record, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	f := r.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []dlqops.Status{dlqops.StatusNew}
	}
	f.Limit = 0
	out := []dlqops.Record{}
	sc := scan{mode: "claim", f: f, after: r.After, want: r.Limit,
		extra: [3]any{r.Owner, microString(r.Now), microString(r.Now.Add(r.Lease))}}
	_, err := s.walk(ctx, sc, func(item any) error {
		dl, err := decodePairs(item)
		if err != nil {
			return err
		}
		out = append(out, dl)
		return nil
	})
	if err != nil {
		// letters claimed before the error stay claimed until their lease
		// ends; nobody else takes them meanwhile
		return nil, storeErr("claim", err)
	}
	return out, nil
}

func (s *Store) finish(ctx context.Context, op string, args ...any) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	res, err := finishScript.Run(ctx, s.client, nil, append([]any{s.kp, op}, args...)...).Text()
	if err != nil {
		return storeErr(op, err)
	}
	id, owner := args[0], args[1]
	switch res {
	case "ok":
		return nil
	case "notfound":
		return fmt.Errorf("%w: %q", dlqops.ErrNotFound, id)
	case "lost":
		return fmt.Errorf("%w: %q is not held by %q", dlqops.ErrClaimLost, id, owner)
	}
	return storeErr(op, fmt.Errorf("unexpected reply %q", res))
}

// MarkReplayed implements dlqops.Store.
func (s *Store) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	return s.finish(ctx, "mark", id, owner, replayUUID, microString(at))
}

// Release implements dlqops.Store.
func (s *Store) Release(ctx context.Context, id, owner, reason string) error {
	return s.finish(ctx, "release", id, owner, reason)
}
