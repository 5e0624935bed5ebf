// Package pgdedup is the PostgreSQL inbox: a dedup.Store whose done mark
// can commit in the same transaction as the handler's own database writes.
//
// This is the only way to get exactly-once side effects into PostgreSQL.
// With any other store (memory, Redis, or this one used without a
// transaction) the handler's writes and the done mark are two commits: a
// crash between them leaves the writes without the mark, and the
// redelivered message runs the handler again once the claim's lease ends.
// With the inbox the handler writes the mark itself, inside its
// transaction, through MarkDone (a pgx.Tx) or MarkDoneSQL (a *sql.Tx):
// the dedup middleware put the delivery's claim in the message context (a
// dedup.Ticket), the helper reads it from there. The writes and the mark
// commit together or not at all, whatever the moment of a SIGKILL. If two
// deliveries of one identity race (a lease that ended under a slow
// handler), the second mark finds the first committed and returns
// dedup.ErrAlreadyDone: roll back, and return nil (the work is done).
//
//	func handle(msg *message.Message) error {
//		tx, err := pool.Begin(msg.Context())
//		...
//		defer tx.Rollback(ctx)
//		if _, err := tx.Exec(ctx, `UPDATE stock ...`); err != nil { return err }
//		if err := inbox.MarkDone(msg.Context(), tx); errors.Is(err, dedup.ErrAlreadyDone) {
//			return nil
//		} else if err != nil {
//			return err
//		}
//		return tx.Commit(ctx)
//	}
//
// One table (default levee_dedup: key, token, done, until), created by
// New when missing. A key is stored as it is unless the text column
// cannot keep it (a NUL byte or invalid UTF-8, which an identity from
// AMQP, NATS or a producer's levee_dedup_id may hold): such a key, and one
// that starts with the escape's prefix, is stored as DEL "hex:" and its
// bytes in hex, so every identity has one row of its own. An error by
// which the database refuses a call's data (SQLSTATE class 22) declares
// the class validation: the dedup middleware fails the message with
// dedup.ErrKeyRefused, and the dlq dead-letters it with the reason, where
// an outage is deferred. Each call is one statement, so one round trip; Prune
// deletes rows whose claim or window ended, and New starts a pruner
// (stopped by Close) unless WithPruneEvery(0). Safe for concurrent use.
package pgdedup
