package chaos

import (
	"bytes"
	"strings"
	"testing"
)

const testMax = 5

// deliver plays one delivery: a call, an optional success, and the ack or
// Nack.
func deliver(l recorder, id, gen int, succeed, ack bool) {
	before, _ := l.Delivery(id, gen)
	l.Call(id, gen)
	if succeed {
		l.Success(id, gen)
	}
	l.Result(id, gen, before, ack)
}

// deadLetter plays a handler that fails calls times and a dead letter
// stored with attempts and class.
func deadLetter(l *Ledger, id, gen, calls, attempts int, class string) {
	for i := 0; i < calls; i++ {
		deliver(l, id, gen, false, i == calls-1)
	}
	l.DeadLetter(id, gen, attempts, class)
	l.StoreRow(id, gen, attempts, class, "new")
}

func TestCheckCategories(t *testing.T) {
	tests := []struct {
		name  string
		fate  Fate
		play  func(l *Ledger)
		opts  CheckOptions
		want  func(r *Report) int
		fail  bool
		field string
	}{
		{"healthy processed once", Fate{Kind: Healthy}, func(l *Ledger) { deliver(l, 0, 0, true, true) },
			CheckOptions{}, func(r *Report) int { return r.Processed }, false, "processed"},
		{"healthy never read is lost", Fate{Kind: Healthy}, func(l *Ledger) {},
			CheckOptions{}, func(r *Report) int { return r.Lost }, true, "lost"},
		{"healthy Nacked forever is lost", Fate{Kind: Healthy}, func(l *Ledger) { deliver(l, 0, 0, false, false) },
			CheckOptions{}, func(r *Report) int { return r.Lost }, true, "lost"},
		{"stranger is unexpected", Fate{Kind: Healthy}, func(l *Ledger) {
			deliver(l, 0, 0, true, true)
			l.Unexpected("handler", "999")
		}, CheckOptions{}, func(r *Report) int { return r.Unexpected }, true, "unexpected"},
		{"duplicate after success then Nack is explained", Fate{Kind: Healthy}, func(l *Ledger) {
			deliver(l, 0, 0, true, false)
			deliver(l, 0, 0, true, true)
		}, CheckOptions{}, func(r *Report) int { return r.DupSuccessThenNack }, false, "dup success-then-nack"},
		{"duplicate after an ack is unexplained without ack loss", Fate{Kind: Healthy}, func(l *Ledger) {
			deliver(l, 0, 0, true, true)
			deliver(l, 0, 0, true, true)
		}, CheckOptions{}, func(r *Report) int { return r.DupUnexplained }, true, "dup unexplained"},
		{"duplicate after an ack is explained with ack loss", Fate{Kind: Healthy}, func(l *Ledger) {
			deliver(l, 0, 0, true, true)
			deliver(l, 0, 0, true, true)
		}, CheckOptions{AckLoss: true}, func(r *Report) int { return r.DupRedeliveredAfterAck }, false, "dup after ack"},
		{"duplicate after a producer re-publish is explained", Fate{Kind: Healthy}, func(l *Ledger) {
			l.Republished(0)
			deliver(l, 0, 0, true, true)
			deliver(l, 0, 0, true, true)
		}, CheckOptions{}, func(r *Report) int { return r.DupRepublished }, false, "dup republished"},
		{"a failed replay publish is not awaited", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
			l.Replayed(0, 0)
			l.ReplayFailed(0, 0)
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.DeadLettered }, false, "replay failed"},
		{"poison redelivered after a lost ack is explained with ack loss", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
			deadLetter(l, 0, 0, 3, 3, "exhausted") // the broker lost the ack: handled again
		}, CheckOptions{MaxAttempts: testMax, AckLoss: true}, func(r *Report) int { return r.RedeadLettered }, false, "re-dead-lettered"},
		{"panic re-published by the producer is explained", Fate{Kind: Panic}, func(l *Ledger) {
			l.Republished(0)                   // an ambiguous publish error: both copies reached the broker
			deadLetter(l, 0, 0, 1, 1, "panic") // the first copy
			deliver(l, 0, 0, false, true)      // the second copy: handled afresh
			l.DeadLetter(0, 0, 1, "panic")     // and dead-lettered with 1 attempt
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.RepublishedBad }, false, "republished bad"},
		{"panic handled twice without a re-publish is a mismatch", Fate{Kind: Panic}, func(l *Ledger) {
			deadLetter(l, 0, 0, 1, 1, "panic")
			deliver(l, 0, 0, false, true)
			l.DeadLetter(0, 0, 1, "panic")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.AttemptsMismatch }, true, "twice without republish"},
		{"poison redelivered after an ack without ack loss is a mismatch", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
			deadLetter(l, 0, 0, 3, 3, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.AttemptsMismatch }, true, "attempts"},
		{"poison handled again after a failed DLQ publish is explained", Fate{Kind: Poison}, func(l *Ledger) {
			for i := 0; i < testMax; i++ {
				deliver(l, 0, 0, false, false)
			}
			l.DeadLetterPublishFailed(0, 0) // the broker was down: Nacked
			deliver(l, 0, 0, false, true)   // redelivered: one more call, then dead-lettered
			l.DeadLetter(0, 0, testMax+1, "exhausted")
			l.StoreRow(0, 0, testMax+1, "exhausted", "new")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.HandledAfterPublishFailure }, false, "after publish failure"},
		{"permanent whose failed DLQ publish reached the DLQ is explained", Fate{Kind: Permanent}, func(l *Ledger) {
			deliver(l, 0, 0, false, false)
			l.DeadLetterPublishFailed(0, 0) // reported failed, but the letter reached the DLQ
			l.DeadLetter(0, 0, 1, "permanent")
			l.StoreRow(0, 0, 1, "permanent", "new")
			deliver(l, 0, 0, false, true) // redelivered: called again, dead-lettered again
			l.DeadLetter(0, 0, 2, "permanent")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.HandledAfterPublishFailure }, false, "after publish failure, stored first"},
		{"poison with more calls than its failed DLQ publishes is a mismatch", Fate{Kind: Poison}, func(l *Ledger) {
			l.DeadLetterPublishFailed(0, 0)
			deadLetter(l, 0, 0, testMax+2, testMax+2, "exhausted")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.AttemptsMismatch }, true, "attempts"},
		{"healthy in the DLQ is wrongly dead-lettered", Fate{Kind: Healthy}, func(l *Ledger) {
			deadLetter(l, 0, 0, 1, 1, "permanent")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.WronglyDeadLettered }, true, "wrongly"},
		{"transient exhausted without faults is wrongly dead-lettered", Fate{Kind: Transient, K: 3}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.WronglyDeadLettered }, true, "wrongly"},
		{"transient exhausted by injected failures is reported apart", Fate{Kind: Transient, K: 5}, func(l *Ledger) {
			l.FaultFailure(0, 0)
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.ExhaustedByFaults }, false, "exhausted by faults"},
		{"poison dead-lettered right", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.DeadLettered }, false, "dead-lettered"},
		{"poison never dead-lettered", Fate{Kind: Poison}, func(l *Ledger) { deliver(l, 0, 0, false, false) },
			CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.PoisonNotDeadLettered }, true, "poison not dead-lettered"},
		{"poison missing from the store", Fate{Kind: Poison}, func(l *Ledger) {
			for i := 0; i < testMax; i++ {
				deliver(l, 0, 0, false, i == testMax-1)
			}
			l.DeadLetter(0, 0, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.PoisonNotDeadLettered }, true, "not in store"},
		{"poison with a skipped retry", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax-1, testMax-1, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.AttemptsMismatch }, true, "attempts"},
		{"poison with an extra attempt", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax+1, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.AttemptsMismatch }, true, "attempts"},
		{"permanent with class exhausted", Fate{Kind: Permanent}, func(l *Ledger) {
			deadLetter(l, 0, 0, 1, 1, "exhausted")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.WrongClass }, true, "class"},
		{"validation never calls the handler", Fate{Kind: Validation}, func(l *Ledger) {
			l.Delivery(0, 0)
			l.Result(0, 0, 0, true)
			l.DeadLetter(0, 0, 1, "validation")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.DeadLettered }, false, "validation"},
		{"validation that reached the handler", Fate{Kind: Validation}, func(l *Ledger) {
			deadLetter(l, 0, 0, 1, 1, "validation")
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.AttemptsMismatch }, true, "validation called"},
		{"forged metadata reached the handler", Fate{Kind: Forged, K: 2}, func(l *Ledger) {
			l.ForgedSeen(0)
			deliver(l, 0, 0, false, false)
			deliver(l, 0, 0, true, true)
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.ForgedHonoured }, true, "forged"},
		{"replayed poison dead-lettered again", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
			l.Replayed(0, 0)
			deadLetter(l, 0, 1, testMax, testMax, "exhausted")
		}, CheckOptions{MaxAttempts: testMax, StoreListed: true}, func(r *Report) int { return r.Replays }, false, "replay"},
		{"replayed poison lost in its second generation", Fate{Kind: Poison}, func(l *Ledger) {
			deadLetter(l, 0, 0, testMax, testMax, "exhausted")
			l.Replayed(0, 0)
		}, CheckOptions{MaxAttempts: testMax}, func(r *Report) int { return r.PoisonNotDeadLettered }, true, "replay lost"},
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

func TestCheckOrderViolations(t *testing.T) {
	l := NewLedger(4, 2)
	for id := 0; id < 4; id++ {
		l.Sent(id, Fate{Kind: Healthy})
	}
	// Key 0 holds 0 and 2, key 1 holds 1 and 3: 3 before 2 crosses keys,
	// so each key is still in order.
	for _, id := range []int{0, 1, 3, 2} {
		deliver(l, id, 0, true, true)
	}
	if r := Check(l, CheckOptions{Ordered: true}); r.OrderViolations != 0 {
		t.Fatalf("got %d order violations, want 0", r.OrderViolations)
	}
	l = NewLedger(4, 2)
	for id := 0; id < 4; id++ {
		l.Sent(id, Fate{Kind: Healthy})
	}
	for _, id := range []int{2, 0, 1, 3} { // key 0: 2 before 0
		deliver(l, id, 0, true, true)
	}
	r := Check(l, CheckOptions{Ordered: true})
	if r.OrderViolations != 1 || !r.Failed() {
		t.Fatalf("got %d order violations (failed %v), want 1 and a failure", r.OrderViolations, r.Failed())
	}
	if r := Check(l, CheckOptions{Ordered: false}); r.Failed() {
		t.Error("an unordered transport failed on order")
	}
}

func TestReportPrintsEveryCategory(t *testing.T) {
	l := NewLedger(2, 0)
	l.Sent(0, Fate{Kind: Healthy})
	l.Sent(1, Fate{Kind: Poison})
	deliver(l, 0, 0, true, true)
	deadLetter(l, 1, 0, testMax, testMax, "exhausted")
	var b bytes.Buffer
	Check(l, CheckOptions{MaxAttempts: testMax, StoreListed: true}).Print(&b)
	for _, want := range []string{"lost", "unexpected", "duplicated", "wrongly dead-lettered", "poison not dead-lettered",
		"attempts != expected", "order violations", "deliveries per message", "verdict: ok"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestReplayFailedReleasesPending(t *testing.T) {
	l := NewLedger(1, 0)
	l.Sent(0, Fate{Kind: Poison})
	deadLetter(l, 0, 0, testMax, testMax, "exhausted")
	l.Replayed(0, 0)
	if _, pending := l.Progress(); pending != 1 {
		t.Fatalf("after Replayed: pending %d, want 1", pending)
	}
	l.ReplayFailed(0, 0)
	if _, pending := l.Progress(); pending != 0 {
		t.Fatalf("after ReplayFailed: pending %d, want 0", pending)
	}
}
