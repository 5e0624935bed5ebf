package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Metadata the producer sets on every message.
const (
	// MetaID is the message's number in the run (decimal).
	MetaID = "chaos_id"
	// MetaRun identifies the run, so a message of another run is reported
	// unexpected.
	MetaRun = "chaos_run"
)

// The handlers a stack file must configure.
const (
	HandlerName      = "chaos"
	BatchHandlerName = "chaos-batch"
)

// The forged control values of a Forged message: a delivery count past any
// max attempts, an hour's delay and a redelivery time a day ahead.
const (
	forgedDeliveryCount = "1000000"
	forgedRetryAfter    = "1h"
)

// errDownstream is the transient error of a call made during an outage.
var errDownstream = errors.New("levee/chaos: downstream unavailable (injected outage)")

// errTransient is the transient failure of a Transient or Poison fate.
var errTransient = errors.New("levee/chaos: transient failure (fate)")

// recorder is where the consumer records what it sees: the run's Ledger
// in process, or a consumer process's event log (which a runner replays
// into its Ledger).
type recorder interface {
	Fate(id int) (Fate, bool)
	Unexpected(where, id string)
	Delivery(id, gen int) (successes uint32, ok bool)
	Result(id, gen int, before uint32, acked bool)
	BrokerCount(id, gen, n int)
	Call(id, gen int) int
	Success(id, gen int)
	FaultFailure(id, gen int)
	ForgedSeen(id int)
	DeadLetterPublishFailed(id, gen int)
}

// consumer is the consumer side of a run: it identifies each message,
// plays its fate and records everything in the ledger.
type consumer struct {
	// rec records the handlers' events; ledger (the runner's) records dead
	// letters, replays and store rows. They are the same in process.
	rec recorder
	// fx commits the plain handler's side effects (plans with dedup:
	// true), nil otherwise.
	fx     *effects
	ledger *Ledger
	plan   *Plan
	runID  string
	start  time.Time
	now    func() time.Time
	// storeNacks counts dead letters Nacked because the store failed.
	storeNacks atomic.Int64
}

// identify reads the message's ID and generation; an ID of another run or
// out of range is recorded as unexpected.
func (c *consumer) identify(msg *message.Message, where string) (id, gen int, ok bool) {
	raw := msg.Metadata.Get(MetaID)
	n, err := strconv.Atoi(raw)
	if msg.Metadata.Get(MetaRun) != c.runID || err != nil {
		c.rec.Unexpected(where, raw)
		return 0, 0, false
	}
	if _, sent := c.rec.Fate(n); !sent {
		c.rec.Unexpected(where, raw)
		return 0, 0, false
	}
	return n, dlq.ReplayCount(msg.Metadata), true
}

// Middleware is the outermost router middleware: it records each
// delivery and how it ended (ack or Nack).
func (c *consumer) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if h := message.HandlerNameFromCtx(msg.Context()); h != HandlerName && h != BatchHandlerName {
			return next(msg)
		}
		id, gen, ok := c.identify(msg, "delivery")
		if !ok {
			return nil, nil // ack: a stranger must not loop
		}
		before, _ := c.rec.Delivery(id, gen)
		if n, err := strconv.Atoi(msg.Metadata.Get(levee.KeyDeliveryCount)); err == nil {
			c.rec.BrokerCount(id, gen, n)
		}
		out, err := next(msg)
		if errors.Is(err, dlq.ErrPublish) {
			c.rec.DeadLetterPublishFailed(id, gen)
		}
		c.rec.Result(id, gen, before, err == nil)
		return out, err
	}
}

// downstream is the call every message that reaches the downstream makes:
// it fails during an outage and is slow during a latency spike.
func (c *consumer) downstream(ctx context.Context) error {
	t := c.now().Sub(c.start)
	if _, ok := c.plan.active(FaultOutage, t); ok {
		return errDownstream
	}
	if f, ok := c.plan.active(FaultLatency, t); ok {
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("levee/chaos: slow downstream (injected latency): %w", ctx.Err())
		}
	}
	return nil
}

// play runs one message's fate for handler call number call. It returns
// nil on success.
func (c *consumer) play(ctx context.Context, msg *message.Message, id, gen int, f Fate, call int, down error) error {
	if msg.Metadata.Get(levee.KeyRetryAfter) == forgedRetryAfter ||
		msg.Metadata.Get(levee.KeyDeliveryCount) == forgedDeliveryCount ||
		(msg.Metadata.Get(levee.KeyRedeliverAt) != "" && f.Kind == Forged) {
		c.rec.ForgedSeen(id)
	}
	switch f.Kind {
	case Permanent:
		return dlq.Permanent(fmt.Errorf("levee/chaos: message %d is permanently bad (fate)", id))
	case Validation:
		// The schema should have stopped it before any call.
		return dlq.Permanent(fmt.Errorf("levee/chaos: message %d broke its schema but reached the handler", id))
	case Panic:
		panic(fmt.Sprintf("levee/chaos: message %d panics (fate)", id))
	}
	if down != nil {
		c.rec.FaultFailure(id, gen)
		return down
	}
	switch f.Kind {
	case Poison:
		return errTransient
	case Transient, Forged:
		if call < f.K {
			return errTransient
		}
	}
	if c.fx != nil {
		// The success is the committed side effect: a commit that failed
		// is a failed call (retried), not a success.
		if err := c.fx.commit(ctx, msg, id, gen); err != nil {
			return err
		}
	}
	c.rec.Success(id, gen)
	return nil
}

// Handle is the plain handler "chaos".
func (c *consumer) Handle(msg *message.Message) error {
	id, gen, ok := c.identify(msg, "handler")
	if !ok {
		return nil
	}
	f, _ := c.rec.Fate(id)
	call := c.rec.Call(id, gen)
	var down error
	if f.Kind.Good() || f.Kind == Poison {
		down = c.downstream(msg.Context())
	}
	return c.play(msg.Context(), msg, id, gen, f, call, down)
}

// Batch is the batch handler "chaos-batch": one downstream call per batch,
// a result per message.
func (c *consumer) Batch(ctx context.Context, msgs []*message.Message) error {
	down := c.downstream(ctx)
	var failed *batch.Errors
	for i, msg := range msgs {
		id, gen, ok := c.identify(msg, "batch handler")
		if !ok {
			continue
		}
		f, _ := c.rec.Fate(id)
		call := c.rec.Call(id, gen)
		d := down
		if !f.Kind.Good() && f.Kind != Poison {
			d = nil
		}
		if err := c.play(ctx, msg, id, gen, f, call, d); err != nil {
			if failed == nil {
				failed = &batch.Errors{}
			}
			failed.Fail(i, err)
		}
	}
	if failed != nil {
		return failed
	}
	return nil
}

// DeadLetters is the handler of a DLQ topic: it stores the letter through
// the monitor and then records it.
func (c *consumer) DeadLetters(m *dlqops.Monitor) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		if err := m.Handle(msg); err != nil {
			c.storeNacks.Add(1)
			return err // Nack: the store is down or stalled
		}
		id, gen, ok := c.identify(msg, "dead letter")
		if !ok {
			return nil
		}
		attempts, _ := dlq.ParseCount(msg.Metadata.Get(dlq.KeyAttempts))
		c.ledger.DeadLetter(id, gen, attempts, msg.Metadata.Get(dlq.KeyErrorClass))
		return nil
	}
}
