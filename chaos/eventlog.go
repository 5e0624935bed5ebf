package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The event log of a consumer process: one line per event, appended to a
// file of its own with one write(2) before the event's effect (a handler
// call before the call, an ack before the router acks). A SIGKILL ends
// the process, not the kernel: every write that returned is in the file
// (fsync would matter only for a machine crash, which the suite does not
// inject). The runner tails the file into its Ledger; a restarted process
// replays its predecessors' files into its own, so the calls of a message
// count across processes.
//
// Lines are tab-separated: an op, then its fields.
//
//	I pid                    the process is consuming (ready)
//	D id gen                 Ledger.Delivery
//	R id gen before acked    Ledger.Result (acked 0 or 1)
//	C id gen                 Ledger.Call
//	S id gen                 Ledger.Success
//	F id gen                 Ledger.FaultFailure
//	X id                     Ledger.ForgedSeen
//	P id gen                 Ledger.DeadLetterPublishFailed
//	U where raw              Ledger.Unexpected (both quoted)
//	M name value             a Levee counter of the process's meter provider (cumulative)
//	B handler from to        a breaker state change of the process
//	N id gen count           Ledger.BrokerCount
//	E msg err                an error the process logged (both quoted; errorlog.go)
const (
	opReady       = 'I'
	opDelivery    = 'D'
	opResult      = 'R'
	opCall        = 'C'
	opSuccess     = 'S'
	opFaultFail   = 'F'
	opForged      = 'X'
	opPublishFail = 'P'
	opUnexpected  = 'U'
	opCounter     = 'M'
	opBreaker     = 'B'
	opError       = 'E'
	opBrokerCount = 'N'
)

// eventLog is a recorder that applies each event to the process's own
// Ledger and appends it to the file, both under one lock, so the file's
// order is the order the Ledger saw (the runner replays it to the same
// counts). A failed write calls fail (the process exits: nothing is acked
// after an event that was not recorded). Safe for concurrent use.
type eventLog struct {
	mu   sync.Mutex
	l    *Ledger
	w    io.Writer // guarded by mu
	buf  []byte    // guarded by mu
	fail func(error)
}

func (e *eventLog) write(op byte, fields ...string) {
	e.buf = append(e.buf[:0], op)
	for _, f := range fields {
		e.buf = append(e.buf, '\t')
		e.buf = append(e.buf, f...)
	}
	e.buf = append(e.buf, '\n')
	if _, err := e.w.Write(e.buf); err != nil {
		e.fail(fmt.Errorf("levee/chaos: writing the event log: %w", err))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func (e *eventLog) Fate(id int) (Fate, bool) { return e.l.Fate(id) }

func (e *eventLog) Unexpected(where, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l.Unexpected(where, id)
	e.write(opUnexpected, strconv.Quote(where), strconv.Quote(id))
}

func (e *eventLog) Delivery(id, gen int) (uint32, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.l.Delivery(id, gen)
	if ok {
		e.write(opDelivery, itoa(id), itoa(gen))
	}
	return n, ok
}

func (e *eventLog) Result(id, gen int, before uint32, acked bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l.Result(id, gen, before, acked)
	a := "0"
	if acked {
		a = "1"
	}
	e.write(opResult, itoa(id), itoa(gen), strconv.FormatUint(uint64(before), 10), a)
}

func (e *eventLog) Call(id, gen int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.l.Call(id, gen)
	e.write(opCall, itoa(id), itoa(gen))
	return n
}

func (e *eventLog) BrokerCount(id, gen, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l.BrokerCount(id, gen, n)
	e.write(opBrokerCount, itoa(id), itoa(gen), itoa(n))
}

func (e *eventLog) Success(id, gen int) { e.event(opSuccess, id, gen, e.l.Success) }

func (e *eventLog) FaultFailure(id, gen int) { e.event(opFaultFail, id, gen, e.l.FaultFailure) }

func (e *eventLog) DeadLetterPublishFailed(id, gen int) {
	e.event(opPublishFail, id, gen, e.l.DeadLetterPublishFailed)
}

func (e *eventLog) ForgedSeen(id int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l.ForgedSeen(id)
	e.write(opForged, itoa(id))
}

func (e *eventLog) event(op byte, id, gen int, apply func(id, gen int)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	apply(id, gen)
	e.write(op, itoa(id), itoa(gen))
}

// ready records that the process consumes.
func (e *eventLog) ready(pid int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(opReady, itoa(pid))
}

// counter records a counter's value.
func (e *eventLog) counter(name string, v int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(opCounter, name, strconv.FormatInt(v, 10))
}

// breaker records a breaker state change.
func (e *eventLog) breaker(handler, from, to string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(opBreaker, handler, from, to)
}

// idGen is one generation of one message.
type idGen struct{ id, gen int }

// openDelivery is a delivery whose result is not in the log yet.
type openDelivery struct {
	n       int  // deliveries of the generation open at once (a redelivery can overlap)
	success bool // a handler call succeeded while it was open
}

// tailer reads a consumer process's event log into the runner's Ledger,
// and keeps the deliveries that have no result yet: when the process is
// killed, those are the deliveries the kill interrupted. Not safe for
// concurrent use.
type tailer struct {
	r       io.Reader
	l       *Ledger
	partial []byte
	open    map[idGen]*openDelivery
	ready   bool
	pid     int
	buf     []byte
	// counters are the process's last reported counters; breaker state
	// changes go to tl (nil: dropped).
	counters map[string]int64
	tl       *timeline
	inc      int
}

func newTailer(r io.Reader, l *Ledger) *tailer {
	return &tailer{r: r, l: l, open: map[idGen]*openDelivery{}, buf: make([]byte, 64<<10), counters: map[string]int64{}}
}

// poll reads what was appended since the last poll and applies every
// complete line.
func (t *tailer) poll() error {
	for {
		n, err := t.r.Read(t.buf)
		t.partial = append(t.partial, t.buf[:n]...)
		for {
			i := bytes.IndexByte(t.partial, '\n')
			if i < 0 {
				break
			}
			t.apply(string(t.partial[:i]))
			t.partial = t.partial[i+1:]
		}
		if errors.Is(err, io.EOF) || (n == 0 && err == nil) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// apply applies one line; a line it cannot read is an unexpected event
// (it fails the run).
func (t *tailer) apply(line string) {
	f := strings.Split(line, "\t")
	bad := func() { t.l.Unexpected("event log", line) }
	if len(f[0]) != 1 {
		bad()
		return
	}
	switch {
	case f[0][0] == opCounter && len(f) == 3:
		v, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			bad()
			return
		}
		t.counters[f[1]] = v
		return
	case f[0][0] == opBreaker && len(f) == 4:
		if t.tl != nil {
			t.tl.add("breaker %s: %s -> %s (consumer process %d)", f[1], f[2], f[3], t.inc)
		}
		return
	}
	if f[0][0] == opError && len(f) == 3 {
		msg, err1 := strconv.Unquote(f[1])
		e, err2 := strconv.Unquote(f[2])
		if err1 != nil || err2 != nil {
			bad()
		} else if t.tl != nil {
			t.tl.add("consumer process %d logged an error: %s: %s", t.inc, msg, e)
		}
		return
	}
	if f[0][0] == opUnexpected {
		where, err1 := strconv.Unquote(f[min(1, len(f)-1)])
		raw, err2 := strconv.Unquote(f[len(f)-1])
		if len(f) != 3 || err1 != nil || err2 != nil {
			bad()
			return
		}
		t.l.Unexpected(where, raw)
		return
	}
	n := make([]int, len(f)-1)
	for i := range n {
		v, err := strconv.Atoi(f[i+1])
		if err != nil {
			bad()
			return
		}
		n[i] = v
	}
	if !t.applyOp(f[0][0], n) {
		bad()
	}
}

// applyOp applies an event with numeric fields n; false if malformed.
func (t *tailer) applyOp(op byte, n []int) bool {
	want := map[byte]int{opReady: 1, opDelivery: 2, opResult: 4, opCall: 2, opSuccess: 2, opFaultFail: 2, opForged: 1, opPublishFail: 2, opBrokerCount: 3}
	if w, ok := want[op]; !ok || len(n) != w {
		return false
	}
	switch op {
	case opReady:
		t.ready, t.pid = true, n[0]
	case opForged:
		t.l.ForgedSeen(n[0])
	case opDelivery:
		t.l.Delivery(n[0], n[1])
		k := idGen{n[0], n[1]}
		if t.open[k] == nil {
			t.open[k] = &openDelivery{}
		} else if t.open[k].n > 0 {
			t.l.Overlapped(n[0], n[1]) // delivered again while a delivery of it still ran
		}
		t.open[k].n++
	case opResult:
		t.l.Result(n[0], n[1], uint32(n[2]), n[3] == 1)
		k := idGen{n[0], n[1]}
		if o := t.open[k]; o != nil {
			if o.n--; o.n <= 0 {
				delete(t.open, k)
			}
		}
	case opCall:
		t.l.Call(n[0], n[1])
	case opSuccess:
		t.l.Success(n[0], n[1])
		if o := t.open[idGen{n[0], n[1]}]; o != nil {
			o.success = true
		}
	case opFaultFail:
		t.l.FaultFailure(n[0], n[1])
	case opBrokerCount:
		t.l.BrokerCount(n[0], n[1], n[2])
	case opPublishFail:
		t.l.DeadLetterPublishFailed(n[0], n[1])
	}
	return true
}

// interrupted records the deliveries still open (the process ended
// without their result) in the Ledger, and returns how many there were
// and how many of them had a handler success.
func (t *tailer) interrupted() (open, afterSuccess int) {
	for k, o := range t.open {
		t.l.Interrupted(k.id, k.gen, o.n, o.success)
		open += o.n
		if o.success {
			afterSuccess += o.n
		}
	}
	if len(t.partial) > 0 { // a torn last line: never expected of a write(2) that returned
		t.l.Unexpected("event log (torn line)", string(t.partial))
	}
	clear(t.open)
	return open, afterSuccess
}

// replayLog reads a whole event log file into l (a restarted consumer
// process reads its predecessors' files).
func replayLog(path string, l *Ledger) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return newTailer(f, l).poll()
}
