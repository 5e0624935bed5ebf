package pgstore

import (
	"context"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

var _ dlqops.Renewer = (*Store)(nil)

// Renew implements dlqops.Renewer.
func (s *Store) Renew(ctx context.Context, owner string, until time.Time, ids ...string) (int, error) {
	if owner == "" || len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.table+` SET claim_until = $3 WHERE id = ANY($1) AND claim_owner = $2`, ids, owner, until)
	if err != nil {
		return 0, storeErr("renew", err)
	}
	return int(tag.RowsAffected()), nil
}
