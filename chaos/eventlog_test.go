package chaos

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestEventLogRoundTrip: a consumer process's events, read by the
// runner's tailer, leave the runner's Ledger as they left the process's;
// the deliveries still open when the process ended are the interrupted
// ones, with whether the handler had succeeded in them.
func TestEventLogRoundTrip(t *testing.T) {
	fates := []Fate{{Kind: Healthy}, {Kind: Transient, K: 2}, {Kind: Poison}, {Kind: Healthy}}
	mk := func() *Ledger {
		l := NewLedger(len(fates), 0)
		for i, f := range fates {
			l.Sent(i, f)
		}
		return l
	}
	var file bytes.Buffer
	child := mk()
	e := &eventLog{l: child, w: &file, fail: func(err error) { t.Fatal(err) }}
	e.ready(42)
	deliver(e, 0, 0, true, true)   // healthy: processed
	deliver(e, 1, 0, false, false) // transient: fails, Nacked
	deliver(e, 1, 0, true, true)   // then succeeds
	e.Delivery(2, 0)               // poison: a call cut off by the kill
	e.Call(2, 0)
	e.Delivery(3, 0) // healthy: succeeded, killed before its ack
	e.Call(3, 0)
	e.Success(3, 0)
	e.Delivery(3, 0) // healthy again, while the first delivery still runs
	e.FaultFailure(1, 0)
	e.Unexpected("handler", "a\tb")

	runner := mk()
	tl := newTailer(&file, runner)
	if err := tl.poll(); err != nil {
		t.Fatal(err)
	}
	if !tl.ready || tl.pid != 42 {
		t.Errorf("ready %v pid %d, want true 42", tl.ready, tl.pid)
	}
	open, afterSuccess := tl.interrupted()
	if open != 3 || afterSuccess != 2 {
		t.Errorf("interrupted: got %d (%d after a success), want 3 (2)", open, afterSuccess)
	}
	if runner.entries[3].g0.overlapped != 1 {
		t.Errorf("overlapping deliveries: got %d, want 1", runner.entries[3].g0.overlapped)
	}
	for id := range fates {
		c, r := &child.entries[id].g0, &runner.entries[id].g0
		if c.deliveries != r.deliveries || c.calls != r.calls || c.successes != r.successes || c.acks != r.acks || c.nacks != r.nacks ||
			c.faultFails != r.faultFails {
			t.Errorf("id %d: process %+v, runner %+v", id, *c, *r)
		}
	}
	if runner.entries[3].g0.killedSuccess != 2 || runner.entries[2].g0.killed != 1 || runner.unexpectedN != 1 ||
		runner.unexpected[0].ID != "a\tb" {
		t.Errorf("killed %d, killed after success %d, unexpected %v", runner.entries[2].g0.killed, runner.entries[3].g0.killedSuccess,
			runner.unexpected)
	}
}

// A line the tailer cannot read, or a torn last line, is an unexpected
// event: it fails the run instead of being skipped.
func TestTailerRejectsGarbage(t *testing.T) {
	for _, in := range []string{"D\t1\n", "Q\t1\t0\n", "D\tx\t0\n", "U\tnot-quoted\t\"x\"\n", "R\t0\t0\t1\t1", ""} {
		l := NewLedger(2, 0)
		l.Sent(0, Fate{Kind: Healthy})
		tl := newTailer(bytes.NewBufferString(in), l)
		if err := tl.poll(); err != nil {
			t.Fatal(err)
		}
		tl.interrupted()
		want := 1
		if in == "" {
			want = 0
		}
		if l.unexpectedN != want {
			t.Errorf("%q: got %d unexpected events, want %d", in, l.unexpectedN, want)
		}
	}
}

// A failed write ends the process (fail), before the event's effect.
func TestEventLogWriteFailureFails(t *testing.T) {
	var got error
	l := NewLedger(1, 0)
	l.Sent(0, Fate{Kind: Healthy})
	e := &eventLog{l: l, w: failingWriter{}, fail: func(err error) { got = err }}
	e.Call(0, 0)
	if got == nil {
		t.Fatal("a failed write did not call fail")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestEventLogBrokerCountsAndErrors: the broker's delivery counts and the
// errors a consumer process logged reach the runner (its Ledger and its
// timeline); the router's per-message handler errors are not written.
func TestEventLogBrokerCountsAndErrors(t *testing.T) {
	var file bytes.Buffer
	child := NewLedger(1, 0)
	child.Sent(0, Fate{Kind: Healthy})
	e := &eventLog{l: child, w: &file, fail: func(err error) { t.Fatal(err) }}
	lg := &errorLogger{r: &run{events: e}}
	e.BrokerCount(0, 0, 1)
	e.BrokerCount(0, 0, 2)
	e.BrokerCount(0, 0, 1)
	lg.Error("Handler returned error", errors.New("transient"), nil)
	lg.Error("JetStream ack failed (the message will be redelivered)", errors.New("timeout\tafter 5s"), nil)

	runner := NewLedger(1, 0)
	runner.Sent(0, Fate{Kind: Healthy})
	tl := newTailer(&file, runner)
	tl.tl, tl.inc = &timeline{start: time.Now()}, 3
	if err := tl.poll(); err != nil {
		t.Fatal(err)
	}
	if g := &runner.entries[0].g0; g.brokerMax != 2 || g.brokerFirsts != 2 || g.recounted() != 1 || runner.unexpectedN != 0 {
		t.Errorf("broker counts: max %d, firsts %d, recounted %d, unexpected %d; want 2, 2, 1, 0", g.brokerMax, g.brokerFirsts, g.recounted(), runner.unexpectedN)
	}
	events := tl.tl.list()
	want := "consumer process 3 logged an error: JetStream ack failed (the message will be redelivered): timeout\tafter 5s"
	if len(events) != 1 || events[0].What != want {
		t.Errorf("timeline %+v, want one line %q", events, want)
	}
}

// TestCheckConsumerKill: the windows a consumer kill opens are explained
// (a success cut off before its ack, an ack a killed process recorded but
// the broker never had, a call cut off before its attempt was counted),
// and nothing more: a poison message's stored letter must carry exactly
// max attempts.
func TestCheckConsumerKill(t *testing.T) {
	kill := CheckOptions{MaxAttempts: testMax, StoreListed: true, ConsumerKill: true}
	tests := []struct {
		name  string
		fate  Fate
		play  func(l *Ledger)
		opts  CheckOptions
		want  func(r *Report) int
		fail  bool
		field string
	}{
		{"success cut off before its ack", Fate{Kind: Healthy}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Call(0, 0)
			l.Success(0, 0)
			l.Interrupted(0, 0, 1, true)
			l.SetIncarnation(1)
			deliver(l, 0, 0, true, true)
		}, kill, func(r *Report) int { return r.DupConsumerKilled }, false, "dup killed"},
		{"an ack recorded by a killed process", Fate{Kind: Healthy}, func(l *Ledger) {
			deliver(l, 0, 0, true, true)
			l.SetIncarnation(1)
			deliver(l, 0, 0, true, true)
		}, kill, func(r *Report) int { return r.DupConsumerKilled }, false, "dup after killed ack"},
		{"a redelivery after an ack in the same process is not", Fate{Kind: Healthy}, func(l *Ledger) {
			l.SetIncarnation(1)
			deliver(l, 0, 0, true, true)
			deliver(l, 0, 0, true, true)
		}, kill, func(r *Report) int { return r.DupUnexplained }, true, "dup unexplained"},
		{"poison: a call cut off before its count", Fate{Kind: Poison}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Call(0, 0)
			l.Interrupted(0, 0, 1, false)
			l.SetIncarnation(1)
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
		}, kill, func(r *Report) int { return r.KilledBad }, false, "killed bad"},
		{"poison stored with max+1 attempts is a mismatch", Fate{Kind: Poison}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Call(0, 0)
			l.Interrupted(0, 0, 1, false)
			l.SetIncarnation(1)
			deadLetter(l, 0, 0, testMax, testMax+1, "exhausted")
		}, kill, func(r *Report) int { return r.AttemptsMismatch }, true, "attempts"},
		{"permanent handled again after a kill", Fate{Kind: Permanent}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Call(0, 0)
			l.Interrupted(0, 0, 1, false)
			l.SetIncarnation(1)
			deadLetter(l, 0, 0, 1, 2, "permanent")
		}, kill, func(r *Report) int { return r.KilledBad }, false, "killed permanent"},
		{"the broker delivered it again as new (count back to 1)", Fate{Kind: Healthy}, func(l *Ledger) {
			l.SetIncarnation(1)
			l.Delivery(0, 0)
			l.BrokerCount(0, 0, 1)
			l.Result(0, 0, 0, false)
			before, _ := l.Delivery(0, 0)
			l.BrokerCount(0, 0, 2)
			l.Call(0, 0)
			l.Success(0, 0)
			l.Result(0, 0, before, true)
			before, _ = l.Delivery(0, 0)
			l.BrokerCount(0, 0, 1)
			l.Call(0, 0)
			l.Success(0, 0)
			l.Result(0, 0, before, true)
		}, kill, func(r *Report) int { return r.DupRecounted }, false, "dup recounted"},
		{"poison delivered again as new after its dead letter", Fate{Kind: Poison}, func(l *Ledger) {
			l.BrokerCount(0, 0, 1)
			deadLetter(l, 0, 0, testMax+1, testMax, "exhausted")
			l.BrokerCount(0, 0, 1)
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.RecountedBad }, false, "recounted bad"},
		{"two extra calls for one kill are not", Fate{Kind: Permanent}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Call(0, 0)
			l.Interrupted(0, 0, 1, false)
			l.SetIncarnation(1)
			deadLetter(l, 0, 0, 2, 3, "permanent")
		}, kill, func(r *Report) int { return r.AttemptsMismatch }, true, "too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger(1, 0)
			l.Sent(0, tt.fate)
			tt.play(l)
			r := Check(l, tt.opts)
			if got := tt.want(r); got != 1 {
				var b bytes.Buffer
				r.Print(&b)
				t.Errorf("%s: got %d, want 1\n%s", tt.field, got, b.String())
			}
			if r.Failed() != tt.fail {
				t.Errorf("Failed() = %v, want %v", r.Failed(), tt.fail)
			}
		})
	}
}

// TestHoldPastTheAckDeadline: a delivery held longer than the ack deadline
// is counted, and a duplicate of its message is explained by it.
func TestHoldPastTheAckDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLedger(1, 0)
		l.SetAckDeadline(5 * time.Second)
		l.Sent(0, Fate{Kind: Healthy})
		first, _ := l.Delivery(0, 0)
		time.Sleep(5 * time.Second)
		second, _ := l.Delivery(0, 0) // redelivered while the first runs
		l.Call(0, 0)
		l.Success(0, 0)
		time.Sleep(time.Second)
		l.Result(0, 0, first, true) // held 6s
		l.Call(0, 0)
		l.Success(0, 0)
		l.Result(0, 0, second, true) // held 1s
		r := Check(l, CheckOptions{AckDeadline: 5 * time.Second})
		if r.HeldPastDeadline != 1 || r.LongestHold != 6*time.Second || r.DupAckDeadline != 1 || r.Failed() {
			t.Errorf("got held past %d, longest %s, dup by the deadline %d, failed %v; want 1, 6s, 1, false",
				r.HeldPastDeadline, r.LongestHold, r.DupAckDeadline, r.Failed())
		}
	})
}

// The consumer kills are seeded: the same seed and fault give the same
// times, within the fault's window; another seed gives others.
func TestKillTimesAreSeeded(t *testing.T) {
	f := Fault{Kind: FaultConsumerKill, Start: time.Second, Duration: 8 * time.Second, Count: 4}
	a, b, c := killTimes(23, 0, f), killTimes(23, 0, f), killTimes(24, 0, f)
	if !slices.Equal(a, b) || slices.Equal(a, c) || len(a) != 4 {
		t.Fatalf("seed 23 twice: %v, %v; seed 24: %v", a, b, c)
	}
	for i, at := range a {
		if at < f.Start || at >= f.End() || (i > 0 && at < a[i-1]) {
			t.Errorf("kill times %v: want sorted within [%s, %s)", a, f.Start, f.End())
		}
	}
}
