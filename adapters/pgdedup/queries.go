package pgdedup

// queries are the statements of one table.
type queries struct {
	create, claim, done, isDone, release, markTx, markAll, prune string
}

// newQueries builds the statements for table (a quoted identifier).
//
// claim: "old" reads the row as the statement's snapshot sees it; when
// that row is live (done, or claimed within its lease) the statement
// writes nothing, so a duplicate costs a read, no commit to disk. The
// insert takes the key when it is absent or its claim or window ended
// (the conflict check sees the latest committed row, so two claims never
// both win). Claimed = the insert wrote a row; otherwise old tells done
// or busy (with the lease left); old may miss a row another claim just
// committed, which reads as busy with no known remaining time.
//
// markTx: the done mark of a handler's transaction. It does not take over
// a row already done: a second delivery's transaction then affects no row
// (dedup.ErrAlreadyDone) and rolls back, so the side effects commit once.
func newQueries(table string) queries {
	return queries{
		create: `CREATE TABLE IF NOT EXISTS ` + table + ` (
			key text PRIMARY KEY,
			token bigint NOT NULL,
			done boolean NOT NULL,
			until timestamptz NOT NULL)`,
		claim: `WITH old AS (SELECT done, until FROM ` + table + ` WHERE key = $1),
			ins AS (INSERT INTO ` + table + ` AS t (key, token, done, until)
				SELECT $1, $2, false, now() + $3 * interval '1 millisecond'
				WHERE NOT EXISTS (SELECT 1 FROM old WHERE until > now())
				ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = false, until = excluded.until
				WHERE t.until <= now()
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM ins),
				(SELECT done FROM old),
				(SELECT greatest(0, floor(extract(epoch FROM until - now()) * 1000))::bigint FROM old)`,
		done: `INSERT INTO ` + table + ` AS t (key, token, done, until)
			VALUES ($1, $2, true, now() + $3 * interval '1 millisecond')
			ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = true, until = excluded.until`,
		isDone:  `SELECT EXISTS (SELECT 1 FROM ` + table + ` WHERE key = $1 AND done AND until > now())`,
		release: `DELETE FROM ` + table + ` WHERE key = $1 AND token = $2 AND NOT done`,
		markTx: `INSERT INTO ` + table + ` AS t (key, token, done, until)
			VALUES ($1, $2, true, now() + $3 * interval '1 millisecond')
			ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = true, until = excluded.until
			WHERE NOT t.done OR t.until <= now()`,
		markAll: `INSERT INTO ` + table + ` AS t (key, token, done, until)
			SELECT k, tok, true, now() + w * interval '1 millisecond' FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(k, tok, w)
			ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = true, until = excluded.until
			WHERE NOT t.done OR t.until <= now()
			RETURNING key`,
		prune: `DELETE FROM ` + table + ` WHERE until < now() - interval '1 minute'`,
	}
}
