package dlq

import (
	"fmt"
	"testing"
	"time"
)

func TestAttemptTableLRU(t *testing.T) {
	tb := newAttemptTable(3, time.Hour)
	for i := range 3 {
		tb.put(k(fmt.Sprint(i)), record{attempts: i + 1})
	}
	if _, ok := tb.get(k("0")); !ok { // touch 0: 1 is now least recently used
		t.Fatal("0 missing")
	}
	tb.put(k("3"), record{attempts: 9})
	if _, ok := tb.get(k("1")); ok {
		t.Errorf("1 should have been evicted")
	}
	for _, key := range []string{"0", "2", "3"} {
		if _, ok := tb.get(k(key)); !ok {
			t.Errorf("%s missing", key)
		}
	}
	if tb.len() != 3 {
		t.Errorf("len: got %d, want 3", tb.len())
	}
	tb.put(k("3"), record{attempts: 10}) // update in place
	if r, _ := tb.get(k("3")); r.attempts != 10 || tb.len() != 3 {
		t.Errorf("update: got %d attempts, len %d", r.attempts, tb.len())
	}
	tb.forget(k("3"))
	tb.forget(k("missing"))
	tb.forget(k(""))
	if tb.len() != 2 {
		t.Errorf("len after forget: got %d, want 2", tb.len())
	}
	tb.put(k(""), record{attempts: 1}) // no UUID: not tracked
	if tb.len() != 2 {
		t.Errorf("empty key tracked")
	}
	off := newAttemptTable(0, time.Hour)
	off.put(k("x"), record{attempts: 1})
	if _, ok := off.get(k("x")); ok || off.len() != 0 {
		t.Errorf("a table of size 0 must keep nothing")
	}
}

// k is a table key of one (nil) handler.
func k(uuid string) tableKey { return tableKey{uuid: uuid} }

// TestAttemptTableDeferralsNeverEvictAttempts: found by the chaos suite
// (docs/RELIABILITY.md). An overload deferred more messages than the
// table holds; their deferral records evicted the attempt counts of
// failing messages, and a poison message got up to twice max attempts.
func TestAttemptTableDeferralsNeverEvictAttempts(t *testing.T) {
	tb := newAttemptTable(3, time.Hour)
	tb.put(k("poison"), record{attempts: 2})
	for i := range 100 {
		tb.put(k(fmt.Sprint("deferred-", i)), record{deferrals: 1})
	}
	if r, ok := tb.get(k("poison")); !ok || r.attempts != 2 {
		t.Fatalf("poison: got %+v (present %v), want its 2 attempts kept", r, ok)
	}
	if got := tb.len(); got != 4 {
		t.Errorf("len: got %d, want 4 (1 failed, 3 deferred)", got)
	}
	// A deferred message that then fails moves to the failed side.
	tb.put(k("deferred-99"), record{attempts: 1, deferrals: 1})
	if r, ok := tb.get(k("deferred-99")); !ok || r.attempts != 1 || r.deferrals != 1 {
		t.Errorf("deferred-99: got %+v, want 1 attempt and 1 deferral", r)
	}
	if got := tb.len(); got != 4 {
		t.Errorf("len after the move: got %d, want 4 (2 failed, 2 deferred)", got)
	}
	tb.forget(k("deferred-99"))
	tb.forget(k("poison"))
	if got := tb.len(); got != 2 {
		t.Errorf("len after forget: got %d, want 2", got)
	}
}
