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
	// stop ends the contexts of every subscription's messages in flight
	// in one pass (each subscription group's Stopper is added to it).
	stop   *kit.Stopper
	groups map[<-chan struct{}]*stopGroup // guarded by mu
	wg     sync.WaitGroup
	// settling counts the messages handed to a handler and not settled.
	settling sync.WaitGroup
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
	return &delaySubscriber{sub: sub, schema: schema, logger: logger, closing: make(chan struct{}),
		stop: kit.NewStopper(), groups: map[<-chan struct{}]*stopGroup{}}
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
	// watermill-sql gives a row up (its transaction ends unacked) as soon
	// as its subscription's context ends, and a router cancels that
	// context as its Close begins, while its handlers still run. So
	// watermill-sql gets a context of its own, ended only once the
	// message in flight was settled and its ack committed (relayAll).
	subCtx, endSub := context.WithCancel(context.WithoutCancel(ctx))
	in, err := s.sub.Subscribe(subCtx, topic)
	if err != nil {
		endSub()
		s.wg.Done()
		return nil, err
	}
	out := make(chan *message.Message)
	stop, leave := s.join(ctx)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.relayAll(ctx, s.schema.MessagesTable(topic), in, out, stop)
		leave()
		endSub()
		for row := range in {
			row.Nack() // given up with its transaction: delivered again
		}
	}()
	return out, nil
}

// stopGroup is the Stopper of the messages of every subscription made
// with one context: a transport's FanIn subscribes each of its
// concurrency slots with the same one, and a router ends it for all of
// them at once.
type stopGroup struct {
	stop   *kit.Stopper
	forget func() // removes stop from the subscriber's
	subs   int    // guarded by the subscriber's mu
}

// join returns the Stopper of the subscriptions made with ctx (found by
// its Done channel, comparable whatever ctx's type), and the func that
// leaves the group once a subscription ended.
func (s *delaySubscriber) join(ctx context.Context) (*kit.Stopper, func()) {
	key := ctx.Done()
	s.mu.Lock()
	g := s.groups[key]
	if g == nil {
		g = &stopGroup{stop: kit.NewStopper()}
		g.forget = s.stop.Add(g.stop.Stop)
		s.groups[key] = g
	}
	g.subs++
	s.mu.Unlock()
	return g.stop, func() {
		s.mu.Lock()
		g.subs--
		last := g.subs == 0
		if last {
			delete(s.groups, key)
		}
		s.mu.Unlock()
		if last {
			g.forget()
		}
	}
}

// relayAll relays in's rows to out until in closes, the subscription ends
// (ctx) or the subscriber closes. Then it waits (up to kit.SettleGrace)
// for the commit of the last row a handler acked: watermill-sql runs the
// row's ack and its commit with the subscription's context, so ending
// that context at once would roll back what was just acked.
func (s *delaySubscriber) relayAll(ctx context.Context, table string, in <-chan *message.Message, out chan<- *message.Message, stop *kit.Stopper) {
	var committing <-chan struct{}
	defer func() {
		if committing == nil {
			return
		}
		t := time.NewTimer(kit.SettleGrace)
		defer t.Stop()
		select {
		case <-committing:
		case <-t.C:
		}
	}()
	for {
		select {
		case row, ok := <-in:
			if !ok {
				return
			}
			more, acked := s.relay(ctx, table, row, out, stop)
			committing = nil
			if acked {
				committing = txFinished(row.Context())
			}
			if !more {
				return
			}
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// relay hands the handler a copy of row and settles row with its verdict;
// acked reports that row was acked. more is false when the subscription
// ended (ctx) or the subscriber is closing: then the message in flight,
// if any, was settled, and nothing more is relayed. The message's context
// is registered in stop, its subscription group's Stopper.
func (s *delaySubscriber) relay(ctx context.Context, table string, row *message.Message, out chan<- *message.Message, stop *kit.Stopper) (more, acked bool) {
	msg := message.NewMessage(row.UUID, row.Payload)
	msg.Metadata = make(message.Metadata, len(row.Metadata))
	for k, v := range row.Metadata {
		msg.Metadata[k] = v
	}
	mctx, cancelMsg := context.WithCancel(row.Context())
	defer cancelMsg()
	defer stop.Add(cancelMsg)()
	msg.SetContext(mctx)
	// Counted before the hand-over, under mu, so that Close (which sets
	// closed under mu, then waits) never closes watermill-sql's
	// subscriber under a message a handler holds.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		row.Nack()
		return false, false
	}
	s.settling.Add(1)
	s.mu.Unlock()
	defer s.settling.Done()
	select {
	case out <- msg:
	case <-ctx.Done():
		row.Nack()
		return false, false
	case <-s.closing:
		row.Nack()
		return false, false
	}
	select {
	case <-msg.Acked():
		return true, row.Ack()
	case <-msg.Nacked():
		return true, s.requeueOrNack(table, row, msg)
	case <-ctx.Done():
	case <-s.closing:
	}
	// A shutdown began while the handler ran: the message's context ends
	// (the stack's waits end and Nack a held message), and the verdict is
	// taken for up to kit.SettleGrace, so that a handler finishing in the
	// grace is acked, not run again elsewhere. A Nack then is a
	// hand-back: it goes to another consumer at once, without the delay it
	// may ask for (a held message's retry_after is this consumer's wait,
	// not the next one's), as on the other transports. The contexts of
	// the messages of every slot of the subscription end together (stop;
	// Close ends every subscription's), so a handler whose context ended
	// cannot give its priority slot to a held message whose context is
	// still live, whose handler would then run during the shutdown: when
	// each relay ended only its own message's, they ended one after
	// another as the relays woke.
	stop.Stop()
	if kit.AwaitVerdict(msg) == kit.Acked {
		return false, row.Ack()
	}
	row.Nack()
	return false, false
}

// requeueOrNack settles row for a Nacked msg: with the msg's RetryAfter
// delay, a delayed copy is inserted in row's transaction and row acked;
// without one (or when the insert fails, or for a row whose metadata
// could not be decoded) row is Nacked. It reports whether it acked row.
func (s *delaySubscriber) requeueOrNack(table string, row, msg *message.Message) bool {
	if d := kit.RetryAfterOf(msg); d > 0 && !undecodable(row) {
		err := s.requeue(row, table, d)
		if err == nil {
			return row.Ack()
		}
		s.logger.Error("PostgreSQL delayed requeue failed, nacking instead", err,
			watermill.LogFields{"uuid": row.UUID, "retry_after": d})
	}
	row.Nack()
	return false
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

// Close settles the messages in flight (each within kit.SettleGrace),
// waits for the relays and then closes watermill-sql's subscriber: closed
// first, it would give up the rows of handlers about to ack.
func (s *delaySubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop.Stop() // every subscription's messages in one pass
	close(s.closing)
	s.settling.Wait()
	err := s.sub.Close()
	s.wg.Wait()
	return err
}
