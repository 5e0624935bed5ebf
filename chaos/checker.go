package chaos

import (
	"fmt"
	"time"
)

// CheckOptions says what the checker may expect of the run.
type CheckOptions struct {
	// MaxAttempts is the dlq's max attempts of the handlers under test.
	MaxAttempts int
	// StoreListed: the DLQ store was listed into the ledger (StoreRow),
	// so every dead letter must have exactly one row.
	StoreListed bool
	// AckLoss: the run had a fault that can lose an ack after it was sent
	// (a broker restart, a consumer killed): a success redelivered after
	// its ack is then explained.
	AckLoss bool
	// Ordered: the transport promises order per key; order violations
	// fail the run.
	Ordered bool
	// ConsumerKill: the run killed the consumer process. A duplicate is
	// explained when a success's delivery was interrupted by a kill, or
	// its ack was recorded by a process killed before the broker had it;
	// a bad message may get one more handler call (and, but for poison,
	// attempt) per such window.
	ConsumerKill bool
	// AckDeadline is the transport's ack deadline (0: none): a delivery
	// held longer may be delivered again while it runs.
	AckDeadline time.Duration
	// Effects: the run counted the handler's side effects (plans with
	// dedup: true): every processed good message must have exactly one.
	Effects bool
}

// Detail is one failing or noteworthy message.
type Detail struct {
	ID       int
	Fate     Fate
	Category string
	Note     string
}

// Report is the checker's verdict. Counts are of message IDs unless said
// otherwise.
type Report struct {
	Sent         int
	ByFate       map[Kind]int
	Processed    int // good messages acked after a success
	DeadLettered int // bad messages dead-lettered and stored
	Replays      int // replays published (all generations)

	Lost                   int // sent, never processed nor dead-lettered
	Unexpected             int // events for IDs never sent (events, not IDs)
	Duplicated             int // good messages whose handler succeeded more than once
	DupSuccessThenNack     int // of them: a success whose delivery was Nacked (timeout, crash before ack)
	DupRedeliveredAfterAck int // of them: a success redelivered after its ack (ack lost by a broker or consumer fault)
	DupRepublished         int // of them: the producer published it again after an ambiguous publish error
	DupConsumerKilled      int // of them: the consumer process was killed between the success and the ack
	DupRecounted           int // of them: the broker delivered it again as new (its delivery count back to 1)
	DupUnexplained         int // of them: neither
	DuplicateDeadLetters   int // generations dead-lettered (consumed from the DLQ) more than once
	WronglyDeadLettered    int // good messages in the DLQ (except ExhaustedByFaults)
	// ExhaustedByFaults are good messages dead-lettered as exhausted after
	// exactly max attempts, all of them real handler failures, at least one
	// caused by an injected downstream fault (outage, latency), that would
	// have succeeded within max attempts without the faults: the retry
	// policy doing its job, reported apart.
	ExhaustedByFaults     int
	PoisonNotDeadLettered int // bad messages never dead-lettered (or missing from the store)
	WrongClass            int // dead letters of the wrong class
	AttemptsMismatch      int // dead letters whose attempts or handler calls differ from the fate's
	// RedeadLettered are bad messages redelivered after their dead
	// lettering was acked (the ack lost by a broker fault) and handled
	// again: more handler calls than the fate's and a second dead letter,
	// the first one stored right. Explained only in plans with an ack-losing
	// fault; a mismatch otherwise.
	RedeadLettered int
	// HandledAfterPublishFailure are bad messages whose dead letter's
	// publish failed (the broker down): the dlq Nacked them and, as
	// documented (docs/DLQ.md), called the handler again on each
	// redelivery, so calls and levee_attempts exceed the fate's by exactly
	// the failed publishes (the stored letter may be an earlier one, when a
	// publish reported failed but reached the DLQ).
	HandledAfterPublishFailure int
	// RepublishedBad are bad messages the producer published again after
	// an ambiguous publish error (both copies reached the broker): each
	// copy is a new message to the transport and the dlq, handled and
	// dead-lettered with the fate's attempts, so the handler calls add up.
	RepublishedBad int
	// KilledBad are bad messages whose handling a consumer kill
	// interrupted (between a call and its attempt count, or between the
	// dead letter and the ack): each such window may add one handler call
	// (and, for fates other than poison, one attempt); a poison message's
	// stored letter must still have exactly max attempts.
	KilledBad int
	// RecountedBad are bad messages the broker delivered again as new
	// (delivery count back to 1, no kill involved): the same windows.
	RecountedBad int
	// Recounted counts messages the broker delivered again as new
	// (information).
	Recounted int
	// Interrupted counts deliveries a consumer kill interrupted
	// (information).
	Interrupted int
	// Overlapped counts deliveries that began while another delivery of
	// the same message still ran in the same consumer process: the
	// transport's ack deadline passed while the first was held
	// (information).
	Overlapped int
	// HeldPastDeadline counts deliveries the consumer held (from the
	// outermost middleware to the ack or Nack) longer than the ack
	// deadline, LongestHold is the longest hold of any delivery
	// (information; ledger_hold.go).
	HeldPastDeadline int
	LongestHold      time.Duration
	// DupAckDeadline are duplicates whose message had a delivery held past
	// the ack deadline: the transport delivered it again while the first
	// still ran, and both succeeded (explained).
	DupAckDeadline int
	// SideEffects counts side-effect rows; DupEffects good messages whose
	// side effect was committed more than once (handler successes that
	// both took effect), NoEffect processed good messages without one
	// (plans with dedup: true).
	SideEffects, DupEffects, NoEffect int
	ForgedHonoured                    int // forged control metadata reached the handler
	OrderViolations                   int
	OrderChecked                      int // good messages whose order per key was checked (order_keys > 0)
	FaultFailures                     int // handler calls failed by injected faults (information)

	// DeliveriesPerMessage: number of messages (generation 0) by the
	// number of deliveries they got.
	DeliveriesPerMessage map[int]int
	// Details lists failing messages (at most MaxDetails) and a sample of
	// duplicates.
	Details []Detail
	// UnexpectedSample lists some unexpected events.
	UnexpectedSample []Unexpected

	opts CheckOptions
}

// MaxDetails bounds Report.Details.
const MaxDetails = 50

// Failed reports whether the run broke a promise: anything lost or
// unexpected, a wrong dead letter, a poison message not dead-lettered or
// with the wrong attempts or class, forged metadata honoured, an
// unexplained duplicate, or (on an ordered transport) an order violation.
func (r *Report) Failed() bool {
	return r.Lost+r.Unexpected+r.WronglyDeadLettered+r.PoisonNotDeadLettered+r.WrongClass+
		r.AttemptsMismatch+r.ForgedHonoured+r.DupUnexplained+r.DupEffects+r.NoEffect > 0 || (r.opts.Ordered && r.OrderViolations > 0)
}

func (r *Report) detail(id int, f Fate, cat, format string, args ...any) {
	if len(r.Details) < MaxDetails {
		r.Details = append(r.Details, Detail{ID: id, Fate: f, Category: cat, Note: fmt.Sprintf(format, args...)})
	}
}

// Check reads the ledger and sorts every message ID into the categories
// of the Report.
func Check(l *Ledger, o CheckOptions) *Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &Report{ByFate: map[Kind]int{}, DeliveriesPerMessage: map[int]int{}, opts: o}
	r.Unexpected = l.unexpectedN
	r.UnexpectedSample = append([]Unexpected(nil), l.unexpected...)
	r.OrderViolations = len(l.orderErrs)
	r.OrderChecked = l.orderChecked
	for i, v := range l.orderErrs {
		if i >= 5 {
			break
		}
		r.detail(v.ID, l.entries[v.ID].fate, "order", "processed after message %d of key %d", v.After, v.Key)
	}
	for id := range l.entries {
		e := &l.entries[id]
		if !e.sent {
			continue
		}
		r.Sent++
		r.ByFate[e.fate.Kind]++
		r.DeliveriesPerMessage[int(e.g0.deliveries)]++
		for _, g := range e.gens() {
			r.Replays += int(g.replays)
			r.FaultFailures += int(g.faultFails)
			r.Interrupted += int(g.killed)
			r.Overlapped += int(g.overlapped)
			r.HeldPastDeadline += int(g.pastDeadline)
			r.LongestHold = max(r.LongestHold, g.longestHold)
			if g.recounted() > 0 {
				r.Recounted++
				r.detail(id, e.fate, "broker recount (info)", "%s", g.describe())
			}
		}
		if e.forged {
			r.ForgedHonoured++
			r.detail(id, e.fate, "forged honoured", "a forged control key reached the handler")
		}
		if e.fate.Kind.Good() {
			r.checkGood(id, e)
		} else {
			r.checkBad(id, e)
		}
	}
	return r
}

func (r *Report) checkGood(id int, e *entry) {
	g := &e.g0
	// With side effects counted, a committed effect is a success even
	// when the process was killed before it recorded it (its redelivery
	// acked as a duplicate).
	processed := (g.successes > 0 || (r.opts.Effects && g.effects > 0)) && g.acks > 0
	dead := g.deadLetters > 0 || g.rows > 0
	if processed {
		r.Processed++
	}
	if dead && g.dlClass == "exhausted" && int(g.dlAttempts) == r.opts.MaxAttempts && int(g.calls) == r.opts.MaxAttempts &&
		g.successes == 0 && g.faultFails > 0 && int(g.calls-g.faultFails) < e.fate.ExpectedAttempts(r.opts.MaxAttempts) {
		r.ExhaustedByFaults++
		r.detail(id, e.fate, "exhausted by faults", "%d calls, %d failed by injected faults", g.calls, g.faultFails)
	} else if dead {
		r.WronglyDeadLettered++
		r.detail(id, e.fate, "wrongly dead-lettered", "class %s attempts %d after %d calls (%d failed by injected faults)",
			g.dlClass, g.dlAttempts, g.calls, g.faultFails)
	}
	if !processed && !dead {
		r.Lost++
		r.detail(id, e.fate, "lost", "deliveries %d, calls %d, successes %d, acks %d, nacks %d",
			g.deliveries, g.calls, g.successes, g.acks, g.nacks)
	}
	if r.opts.Effects {
		r.SideEffects += int(g.effects)
		if g.effects > 1 {
			r.DupEffects++
			r.detail(id, e.fate, "duplicated side effect", "%d side effects; %s", g.effects, g.describe())
		} else if processed && g.effects == 0 {
			r.NoEffect++
			r.detail(id, e.fate, "no side effect", "%s", g.describe())
		}
	}
	if g.successes > 1 {
		r.Duplicated++
		switch {
		case g.successNacks > 0:
			r.DupSuccessThenNack++
		case e.republished:
			r.DupRepublished++
		case r.opts.ConsumerKill && (g.killedSuccess > 0 || g.afterKilledAck > 0):
			r.DupConsumerKilled++
		case g.recounted() > 0:
			r.DupRecounted++
			r.detail(id, e.fate, "duplicate (broker recount)", "%s", g.describe())
		case g.ackedBefore > 0 && r.opts.AckLoss:
			r.DupRedeliveredAfterAck++
		case g.pastDeadline > 0:
			r.DupAckDeadline++
			r.detail(id, e.fate, "duplicate (ack deadline)", "%s", g.describe())
		default:
			r.DupUnexplained++
			r.detail(id, e.fate, "duplicate (unexplained)", "%s", g.describe())
		}
	}
}

func (r *Report) checkBad(id int, e *entry) {
	want := e.fate.Kind.DeadClass()
	max := r.opts.MaxAttempts
	for gi, g := range e.gens() {
		if gi > 0 && e.gen(gi-1).replays == 0 {
			continue
		}
		if g.deadLetters == 0 || (r.opts.StoreListed && g.rows == 0) {
			r.PoisonNotDeadLettered++
			if gi == 0 {
				r.Lost++
			}
			r.detail(id, e.fate, "poison not dead-lettered", "generation %d: dead letters %d, store rows %d, calls %d, acks %d, nacks %d",
				gi, g.deadLetters, g.rows, g.calls, g.acks, g.nacks)
			continue
		}
		if gi == 0 {
			r.DeadLettered++
		}
		if g.deadLetters > 1 {
			r.DuplicateDeadLetters++
		}
		if g.successes > 0 {
			r.WrongClass++
			r.detail(id, e.fate, "wrong class", "generation %d: a bad message's handler succeeded", gi)
		}
		if g.dlClass != want || (r.opts.StoreListed && g.rowClass != want) {
			r.WrongClass++
			r.detail(id, e.fate, "wrong class", "generation %d: class %q (store %q), want %q", gi, g.dlClass, g.rowClass, want)
		}
		wantCalls := e.fate.ExpectedAttempts(max)
		wantAttempts := wantCalls
		if e.fate.Kind == Validation {
			wantAttempts = 1 // the validation counts as the one attempt; the handler is not called
		}
		if gi == 0 && e.republished && int(g.calls) >= wantCalls && int(g.dlAttempts) == wantAttempts &&
			(!r.opts.StoreListed || int(g.rowAttempts) == wantAttempts) {
			r.RepublishedBad++
			continue
		}
		if r.opts.AckLoss && g.afterAck > 0 && int(g.calls) >= wantCalls &&
			(!r.opts.StoreListed || int(g.rowAttempts) == wantAttempts) {
			r.RedeadLettered++
			continue
		}
		if r.killedBad(e, g, wantCalls, wantAttempts) {
			r.KilledBad++
			continue
		}
		if r.recountedBad(e, g, wantCalls, wantAttempts) {
			r.RecountedBad++
			continue
		}
		if extra := int(g.dlPublishFails); extra > 0 {
			extraCalls := extra
			if e.fate.Kind == Validation {
				extraCalls = 0 // the validator fails again; the handler is not called
			}
			// The store keeps the first letter: one with fewer attempts
			// when a publish that reported failure reached the DLQ all the
			// same (a confirm lost with the broker), so a later letter
			// was consumed too.
			row := int(g.rowAttempts)
			rowOK := !r.opts.StoreListed || row == wantAttempts+extra ||
				(g.deadLetters > 1 && row >= wantAttempts && row < wantAttempts+extra)
			if int(g.calls) == wantCalls+extraCalls && int(g.dlAttempts) == wantAttempts+extra && rowOK {
				r.HandledAfterPublishFailure++
				continue
			}
		}
		if int(g.calls) != wantCalls || int(g.dlAttempts) != wantAttempts || (r.opts.StoreListed && int(g.rowAttempts) != wantAttempts) {
			r.AttemptsMismatch++
			r.detail(id, e.fate, "attempts", "generation %d: handler calls %d (want %d), levee_attempts %d, store %d (want %d); re-published %v; %s",
				gi, g.calls, wantCalls, g.dlAttempts, g.rowAttempts, wantAttempts, e.republished, g.describe())
		}
	}
}
