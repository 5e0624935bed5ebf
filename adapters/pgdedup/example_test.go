package pgdedup_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
)

// The handler's writes and the done mark commit in one transaction: the
// only way to exactly-once side effects in PostgreSQL. (The pool and the
// store come from pgxpool.New and pgdedup.New; see docs/DEDUP.md.)
func Example_handler() {
	var (
		begin func(ctx context.Context) (pgx.Tx, error) // pool.Begin
		inbox *pgdedup.Store
	)
	handle := func(msg *message.Message) error {
		ctx := msg.Context()
		tx, err := begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `UPDATE stock SET reserved = reserved + 1 WHERE sku = $1`, "sku-1"); err != nil {
			return err
		}
		if err := inbox.MarkDone(ctx, tx); errors.Is(err, dedup.ErrAlreadyDone) {
			return nil // another delivery committed first
		} else if err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	_ = handle

	_, err := pgdedup.New(context.Background(), nil)
	fmt.Println(errors.Is(err, levee.ErrInvalidConfig))
	// Output: true
}
