package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/internal/pgescape"
	"github.com/levee-dev/levee/adapters/transport"
)

// delaySubscriber gives the PostgreSQL transport native delayed
// redelivery. It wraps watermill-sql's queue subscriber and hands the
// handler a copy of each row's message (same UUID, payload, metadata and
// context, so wsql.TxFromContext still finds the row's transaction). The
// copy's Ack acks the row. A Nack carrying levee_retry_after becomes, in
// the row's own transaction:
//
//	INSERT INTO <topic table> (uuid, payload, metadata)
//	  VALUES (uuid, payload, metadata + levee_redeliver_at = clock + delay)
//
// followed by the ack of the row, committed together by watermill-sql. The
// poll skips rows whose levee_redeliver_at (Unix milliseconds, by the
// database's clock) is still ahead, so the new row is delivered once the
// delay has passed, by whichever consumer polls then. The delay is not
// waited in process: the row lock, the transaction and the connection are
// released at once. At-least-once is kept because the insert and the ack
// commit atomically: a process that dies before the commit leaves the
// original row unacked (delivered again when its transaction aborts), one
// that dies after it has left the delayed row. If the insert fails, the
// message is Nacked as before (watermill-sql re-sends it after
// poll_interval). A Nack without levee_retry_after is passed through
// unchanged.
//
// It is safe for concurrent use.
type delaySubscriber struct {
	sub    *wsql.Subscriber
	schema skipLockedQueueSchema
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool // guarded by mu
	closing chan struct{}
	wg      sync.WaitGroup
}

// redeliverAtWhere is the poll's extra condition: a row is due when it
// has no levee_redeliver_at, when the time has come, or when the value is
// not a plain count of milliseconds (written by something else: delivered
// rather than stuck; a failing cast would break every poll of the table).
//
// A value further ahead than levee.MaxRetryAfter was not written by Levee
// (its delays are capped) and is ignored too, so a producer that wrote the
// key past Levee's publisher cannot hide a row for longer.
//
// A row whose metadata holds a NUL (\u0000, not preceded by an escaped
// backslash) is due at once, before any JSON operator reads it: PostgreSQL
// refuses to turn \u0000 into text, and the error would fail every poll
// of the table. Levee's publisher and requeue never store one
// (pgescape.Escape); such a row was written by something else, so it
// carries no delay of Levee's.
var redeliverAtWhere = fmt.Sprintf(
	`(CASE WHEN strpos(metadata::text, '\u0000') > 0 AND metadata::text ~ '%[3]s' THEN true `+
		`WHEN metadata->>'%[1]s' ~ '^[0-9]{1,15}$' `+
		`THEN (metadata->>'%[1]s')::bigint <= floor(extract(epoch from now()) * 1000)::bigint `+
		`OR (metadata->>'%[1]s')::bigint > ceil(extract(epoch from now()) * 1000)::bigint + %[2]d `+
		`ELSE true END)`, levee.KeyRedeliverAt, levee.MaxRetryAfter.Milliseconds(), nulEscape)

// nulEscape matches a JSON text's \u0000 escape: a backslash preceded by
// an even number of backslashes (each pair an escaped backslash), then
// u0000. A value holding the six characters \u0000 is stored as
// \\u0000 and does not match.
const nulEscape = `(^|[^\\])(\\\\)*\\u0000`

// requeueQuery inserts the delayed copy; $3 is its metadata as
// pgescape.Escape stores it (no NUL, which ::jsonb refuses), $4 the delay
// in milliseconds, added to the database's clock when the statement runs.
// The insert rounds the clock up and the poll rounds it down, so a row is
// never early.
func requeueQuery(table string) string {
	return `INSERT INTO ` + table + ` (uuid, payload, metadata) VALUES ($1, $2, ` +
		`(COALESCE($3::jsonb, '{}'::jsonb) || jsonb_build_object('` + levee.KeyRedeliverAt + `', ` +
		`(ceil(extract(epoch from clock_timestamp()) * 1000)::bigint + $4::bigint)::text))::json)`
}

func newDelaySubscriber(sub *wsql.Subscriber, schema skipLockedQueueSchema, logger watermill.LoggerAdapter) *delaySubscriber {
	return &delaySubscriber{sub: sub, schema: schema, logger: logger, closing: make(chan struct{})}
}

// Subscribe subscribes watermill-sql's subscriber and relays its messages.
func (s *delaySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, transport.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	in, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		s.wg.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer s.wg.Done()
		defer close(out)
		table := s.schema.MessagesTable(topic)
		for row := range in {
			s.relay(ctx, table, row, out)
		}
	}()
	return out, nil
}

// relay hands the handler a copy of row and settles row with its verdict.
func (s *delaySubscriber) relay(ctx context.Context, table string, row *message.Message, out chan<- *message.Message) {
	msg := message.NewMessage(row.UUID, row.Payload)
	msg.Metadata = make(message.Metadata, len(row.Metadata))
	for k, v := range row.Metadata {
		msg.Metadata[k] = v
	}
	msg.SetContext(row.Context())
	select {
	case out <- msg:
	case <-ctx.Done():
		row.Nack()
		return
	case <-s.closing:
		row.Nack()
		return
	}
	select {
	case <-msg.Acked():
		row.Ack()
	case <-msg.Nacked():
		if d := kit.RetryAfterOf(msg); d > 0 {
			if err := s.requeue(row, table, d); err != nil {
				s.logger.Error("PostgreSQL delayed requeue failed, nacking instead", err,
					watermill.LogFields{"uuid": row.UUID, "retry_after": d})
				row.Nack()
				return
			}
			row.Ack()
			return
		}
		row.Nack()
	case <-ctx.Done():
		// The subscription ended: watermill-sql has given the row up
		// unacked (it is delivered again).
		row.Nack()
	case <-s.closing:
		row.Nack()
	}
}

// requeue inserts the delayed copy of row in row's transaction.
func (s *delaySubscriber) requeue(row *message.Message, table string, d time.Duration) error {
	tx, ok := wsql.TxFromContext(row.Context())
	if !ok {
		return fmt.Errorf("levee/postgres: no transaction in the message context")
	}
	md, err := json.Marshal(pgescape.Escape(row.Metadata))
	if err != nil {
		return fmt.Errorf("levee/postgres: marshal metadata: %w", err)
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	_, err = tx.ExecContext(row.Context(), requeueQuery(table), row.UUID, []byte(row.Payload), string(md), ms)
	if err != nil {
		return fmt.Errorf("levee/postgres: insert delayed copy into %s: %w", strings.Trim(table, `"`), err)
	}
	return nil
}

// SubscribeInitialize creates the topic's table.
func (s *delaySubscriber) SubscribeInitialize(topic string) error {
	return s.sub.SubscribeInitialize(topic)
}

// Close closes watermill-sql's subscriber and waits for the relays.
func (s *delaySubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	err := s.sub.Close()
	s.wg.Wait()
	return err
}
