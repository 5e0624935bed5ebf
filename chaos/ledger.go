package chaos

import (
	"sync"
	"time"
)

// genStat is what happened to one generation of a message: generation 0
// is the message as sent, generation g+1 the replay of generation g's dead
// letter.
type genStat struct {
	deliveries   uint32 // deliveries seen by the outermost middleware
	calls        uint32 // handler calls
	successes    uint32 // handler calls that succeeded
	faultFails   uint32 // handler calls failed by an injected fault (outage, latency)
	acks         uint32 // deliveries that ended in an ack (nil result)
	nacks        uint32 // deliveries that ended in a Nack
	successNacks uint32 // deliveries whose handler succeeded but that were Nacked
	ackedBefore  uint32 // successes that came after an earlier success was acked
	deadLetters  uint32 // dead letters consumed from the DLQ topic and stored
	dlAttempts   int32  // levee_attempts of the last dead letter
	dlClass      string // levee_error_class of the last dead letter
	replays      uint32 // replays of this generation's dead letter published
	rows         uint32 // store rows of this generation (from Store.List)
	rowAttempts  int32
	rowClass     string
	rowStatus    string
	resolved     bool // acked after a success, or dead-lettered
	// afterAck counts deliveries that came after the generation was acked
	// (a lost ack: the broker redelivered what the consumer had settled)
	afterAck uint32
	// dlPublishFails counts deliveries Nacked because the dead letter's
	// publish failed (*dlq.PublishError: the broker was down); the dlq
	// calls the handler again on each redelivery.
	dlPublishFails uint32
	// killed counts deliveries a consumer process's kill interrupted (no
	// result recorded), killedSuccess those in which the handler had
	// succeeded, afterKilledAck deliveries to a later process after an
	// ack recorded by a killed one (the ack may not have reached the
	// broker); ackInc is the process incarnation of the last ack.
	killed, killedSuccess, afterKilledAck uint32
	ackInc                                int32
	overlapped                            uint32 // deliveries that began while another of it ran (same process)
	// longestHold is the longest a delivery of it was held (Delivery to
	// Result); pastDeadline counts deliveries held past the ack deadline.
	longestHold  time.Duration
	pastDeadline uint32
	// brokerMax is the highest delivery count the transport reported;
	// brokerFirsts counts deliveries it reported as first ones.
	brokerMax    int32
	brokerFirsts uint32
	// effects counts side-effect rows committed for it (plans with
	// dedup: true; dedup.go)
	effects uint32
}

type entry struct {
	fate   Fate
	sent   bool
	forged bool // forged control metadata reached the handler
	// republished: the producer published it again after an ambiguous
	// publish error (the first publish may have reached the broker)
	republished bool
	g0          genStat
	more        []genStat // generations 1..
	// order: the sequence of the first acked success, for keys whose
	// transport promises order
	settled bool
}

func (e *entry) gen(g int) *genStat {
	if g <= 0 {
		return &e.g0
	}
	for len(e.more) < g {
		e.more = append(e.more, genStat{})
	}
	return &e.more[g-1]
}

func (e *entry) gens() []*genStat {
	out := []*genStat{&e.g0}
	for i := range e.more {
		out = append(out, &e.more[i])
	}
	return out
}

// Unexpected is an event for a message the producer never sent (or a
// message of another run): where it was seen and the ID it carried.
type Unexpected struct {
	Where string
	ID    string
}

// Ledger records every message a producer sent with its fate, and every
// consumer-side event: deliveries, handler calls, successes, acks and
// Nacks, dead letters, replays and store rows. A Checker reads it. IDs
// are 0-based message numbers. A Ledger is safe for concurrent use.
type Ledger struct {
	mu          sync.Mutex
	entries     []entry // guarded by mu
	unexpected  []Unexpected
	settled     int
	pending     int // published replays whose next generation is not settled yet
	orderKeys   int
	lastByKey   map[int]int // key -> highest ID with an acked success
	orderErrs   []OrderViolation
	unexpectedN int
	faultFails  int
	inc         int32 // the consumer process incarnation whose events are recorded
	// orderChecked counts good messages whose order was checked
	orderChecked int
	// open holds the start of every delivery without a result yet, oldest
	// first; ackDeadline is the transport's (ledger_hold.go).
	open        map[idGen][]time.Time
	ackDeadline time.Duration
	effects     bool // SetEffects (dedup.go)
}

// OrderViolation is a message processed after a later message of the same
// key, on a transport that promises order per key.
type OrderViolation struct {
	Key, ID, After int
}

// maxUnexpectedKept bounds the unexpected events kept for the report.
const maxUnexpectedKept = 100

// NewLedger returns a ledger for n messages. With orderKeys > 0, message
// i has key i % orderKeys and the ledger records order violations per key.
func NewLedger(n, orderKeys int) *Ledger {
	return &Ledger{entries: make([]entry, n), orderKeys: orderKeys, lastByKey: map[int]int{}}
}

// Len returns the number of message IDs the ledger covers.
func (l *Ledger) Len() int { return len(l.entries) }

func (l *Ledger) get(id int) *entry {
	if id < 0 || id >= len(l.entries) || !l.entries[id].sent {
		return nil
	}
	return &l.entries[id]
}

// Sent records that message id was published with fate f (the publish
// returned nil).
func (l *Ledger) Sent(id int, f Fate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || id >= len(l.entries) {
		return
	}
	l.entries[id].fate = f
	l.entries[id].sent = true
}

// Fate returns the fate of a sent message.
func (l *Ledger) Fate(id int) (Fate, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return Fate{}, false
	}
	return e.fate, true
}

// Unexpected records an event for an ID that was never sent.
func (l *Ledger) Unexpected(where, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unexpectedN++
	if len(l.unexpected) < maxUnexpectedKept {
		l.unexpected = append(l.unexpected, Unexpected{Where: where, ID: id})
	}
}

// Delivery records a delivery of generation gen of message id to the
// consumer and returns the handler successes recorded so far, for Result.
// It returns ok=false (and records an unexpected event) for an ID never sent.
func (l *Ledger) Delivery(id, gen int) (successes uint32, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return 0, false
	}
	g := e.gen(gen)
	g.deliveries++
	l.holdBegins(id, gen, time.Now())
	if g.acks > 0 {
		g.afterAck++
		if g.ackInc < l.inc {
			g.afterKilledAck++
		}
	}
	return g.successes, true
}

// Result records how a delivery ended: acked (nil result) or Nacked, and
// whether the handler succeeded during it (successes past before, the
// value Delivery returned).
func (l *Ledger) Result(id, gen int, before uint32, acked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	l.holdEnds(g, id, gen, time.Now(), false)
	succeeded := g.successes > before
	if !acked {
		g.nacks++
		if succeeded {
			g.successNacks++
		}
		return
	}
	g.acks++
	g.ackInc = l.inc
	if succeeded {
		l.resolve(e, gen)
	}
	if (succeeded || l.effects) && gen == 0 && e.fate.Kind.Good() && !e.settled {
		e.settled = true
		l.settled++
		if l.orderKeys > 0 {
			l.orderChecked++
			key := id % l.orderKeys
			if last, ok := l.lastByKey[key]; ok && last > id {
				l.orderErrs = append(l.orderErrs, OrderViolation{Key: key, ID: id, After: last})
			} else {
				l.lastByKey[key] = id
			}
		}
	}
}

// Call records a handler call of generation gen of message id and returns
// the call's number within the generation (1 for the first).
func (l *Ledger) Call(id, gen int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return 0
	}
	g := e.gen(gen)
	g.calls++
	return int(g.calls)
}

// Success records that a handler call of message id succeeded.
func (l *Ledger) Success(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	if g.successes > 0 && g.acks > 0 {
		g.ackedBefore++
	}
	g.successes++
}

// ForgedSeen records that control metadata a producer forged reached the
// handler of message id.
func (l *Ledger) ForgedSeen(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.forged = true
	}
}

// DeadLetter records a dead letter of generation gen of message id,
// consumed from the DLQ topic and stored, with its attempts and class.
func (l *Ledger) DeadLetter(id, gen, attempts int, class string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	g.deadLetters++
	g.dlAttempts = int32(attempts)
	g.dlClass = class
	l.resolve(e, gen)
	if gen == 0 && !e.settled { // a good message dead-lettered ended too (the checker judges it)
		e.settled = true
		l.settled++
	}
}

// DeadLetterPublishFailed records a delivery of generation gen of message
// id that the dlq Nacked because its dead letter could not be published.
func (l *Ledger) DeadLetterPublishFailed(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.gen(gen).dlPublishFails++
	}
}

// resolve marks generation gen of e as ended; a replayed generation's end
// releases its pending count.
func (l *Ledger) resolve(e *entry, gen int) {
	g := e.gen(gen)
	if g.resolved {
		return
	}
	g.resolved = true
	if gen > 0 && e.gen(gen-1).replays > 0 {
		l.pending--
	}
}

// Replayed records that the dead letter of generation gen of message id
// was replayed (published again as generation gen+1).
func (l *Ledger) Replayed(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	g.replays++
	if g.replays == 1 && !e.gen(gen+1).resolved {
		l.pending++
	}
}

// StoreRow records a row of the DLQ store for generation gen of message
// id, as listed after the run.
func (l *Ledger) StoreRow(id, gen, attempts int, class, status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	g.rows++
	g.rowAttempts = int32(attempts)
	g.rowClass = class
	g.rowStatus = status
}

// Progress returns how many sent messages reached their fate's end
// (processed, or dead-lettered and stored), and how many replays wait for
// their next generation to be dead-lettered.
func (l *Ledger) Progress() (settled, pendingReplays int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settled, l.pending
}

// FaultFailure records that a handler call of message id failed because
// of an injected downstream fault rather than the message's fate.
func (l *Ledger) FaultFailure(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.gen(gen).faultFails++
		l.faultFails++
	}
}

func (l *Ledger) faultFailures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.faultFails
}

// ReplayFailed undoes Replayed for a replay whose publish failed: the
// letter stays dead and its next generation is not awaited. (If the
// failed publish did reach the broker, the next generation is still
// recorded and checked.)
func (l *Ledger) ReplayFailed(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	if g.replays == 0 {
		return
	}
	g.replays--
	if g.replays == 0 && !e.gen(gen+1).resolved {
		l.pending--
	}
}
