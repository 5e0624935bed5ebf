package chaos

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
)

// effects is the side effect of the plain handler in a plan with
// dedup: true: each success inserts a row (id, gen) into a table of the
// run, in one transaction with the PostgreSQL inbox's done mark
// (adapters/pgdedup, the stack's dedup store), so the effect and the mark
// commit together or not at all whatever the moment of a SIGKILL. The
// checker counts the rows per message: a duplicated side effect is a
// message with two. Safe for concurrent use.
type effects struct {
	pool  *pgxpool.Pool
	inbox *pgdedup.Store
	table string // quoted
}

// openEffects opens the run's inbox and effects table on the loopback
// PostgreSQL (the runner creates them; the consumer processes use them).
func openEffects(ctx context.Context, runID string) (*effects, error) {
	pc, err := pgxpool.ParseConfig(loopbackPostgres)
	if err != nil {
		return nil, fmt.Errorf("levee/chaos: dedup: %w", err)
	}
	pc.MaxConns = 40 // a claim and a transaction per message in flight (32 per topic)
	// The suite kills the consumer, never PostgreSQL: a commit need not
	// wait for the disk (a SIGKILL of the client loses nothing committed).
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("levee/chaos: dedup: %w", err)
	}
	fx := &effects{pool: pool, table: `"chaos_effects_` + runID + `"`}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+fx.table+` (id int NOT NULL, gen int NOT NULL)`); err != nil {
		pool.Close()
		return nil, fmt.Errorf("levee/chaos: dedup: creating the effects table: %w", err)
	}
	fx.inbox, err = pgdedup.New(ctx, pool, pgdedup.WithTable("chaos_inbox_"+runID), pgdedup.WithPruneEvery(0))
	if err != nil {
		pool.Close()
		return nil, err
	}
	return fx, nil
}

// commit writes message id's side effect and its done mark in one
// transaction. A mark another delivery committed first (an at-least-once
// duplicate racing past an ended lease) rolls the effect back: the work
// is done, nil.
func (fx *effects) commit(ctx context.Context, msg *message.Message, id, gen int) error {
	tx, err := fx.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("levee/chaos: side effect of message %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `INSERT INTO `+fx.table+` (id, gen) VALUES ($1, $2)`, id, gen); err != nil {
		return fmt.Errorf("levee/chaos: side effect of message %d: %w", id, err)
	}
	if err := fx.inbox.MarkDone(msg.Context(), tx); errors.Is(err, dedup.ErrAlreadyDone) {
		return nil
	} else if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("levee/chaos: side effect of message %d: %w", id, err)
	}
	return nil
}

// list reads every side effect into l (after the run).
func (fx *effects) list(ctx context.Context, l *Ledger) error {
	rows, err := fx.pool.Query(ctx, `SELECT id, gen, count(*) FROM `+fx.table+` GROUP BY id, gen`)
	if err != nil {
		return fmt.Errorf("levee/chaos: listing side effects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, gen, n int
		if err := rows.Scan(&id, &gen, &n); err != nil {
			return err
		}
		l.Effects(id, gen, n)
	}
	return rows.Err()
}

// drop removes the run's tables (after the run, by the runner).
func (fx *effects) drop(ctx context.Context) {
	_, _ = fx.pool.Exec(ctx, `DROP TABLE IF EXISTS `+fx.table+`, "chaos_inbox_`+fx.runIDSuffix()+`"`)
}

func (fx *effects) runIDSuffix() string { return fx.table[len(`"chaos_effects_`) : len(fx.table)-1] }

func (fx *effects) close() {
	_ = fx.inbox.Close()
	fx.pool.Close()
}

// SetEffects says that the run counts side effects (dedup: true): an
// acked delivery of a good message settles it even without a recorded
// success (a duplicate the dedup layer acked: its effect is committed,
// which the checker verifies).
func (l *Ledger) SetEffects() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.effects = true
}

// Effects records, after the run, that generation gen of message id has
// n side-effect rows.
func (l *Ledger) Effects(id, gen, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.gen(gen).effects += uint32(n)
	}
}
