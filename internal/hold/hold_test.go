package hold

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

func newMsg() *message.Message {
	m := message.NewMessage("m", nil)
	m.SetContext(context.Background())
	return m
}

func TestStart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMsg()
	if d := Start(m, t0, 0); !d.IsZero() {
		t.Fatalf("no bound and no record: got %v, want zero", d)
	}
	if _, ok := Deadline(m.Context()); ok {
		t.Fatal("a hold without a bound recorded a deadline")
	}
	if d := Start(m, t0, time.Second); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("first hold: got %v", d)
	}
	// A later hold with the same bound keeps the earlier deadline.
	if d := Start(m, t0.Add(700*time.Millisecond), time.Second); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("second hold: got %v, want the recorded deadline", d)
	}
	// A concern without a bound of its own still honours the record.
	if d := Start(m, t0.Add(700*time.Millisecond), 0); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("unbounded concern: got %v, want the recorded deadline", d)
	}
	// A shorter bound of its own wins and is recorded.
	if d := Start(m, t0.Add(100*time.Millisecond), 200*time.Millisecond); !d.Equal(t0.Add(300 * time.Millisecond)) {
		t.Fatalf("shorter own bound: got %v", d)
	}
	if d, _ := Deadline(m.Context()); !d.Equal(t0.Add(300 * time.Millisecond)) {
		t.Fatalf("recorded %v, want the shorter deadline", d)
	}
}

func TestRecordKeepsTheEarliest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMsg()
	Record(m, time.Time{})
	if _, ok := Deadline(m.Context()); ok {
		t.Fatal("the zero time was recorded")
	}
	Record(m, t0.Add(time.Second))
	Record(m, t0.Add(2*time.Second))
	if d, _ := Deadline(m.Context()); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("got %v, want the earlier deadline", d)
	}
	Record(m, t0.Add(500*time.Millisecond))
	if d, _ := Deadline(m.Context()); !d.Equal(t0.Add(500 * time.Millisecond)) {
		t.Fatalf("got %v, want the earlier deadline", d)
	}
}

func TestLeft(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMsg()
	if got := Left(m.Context(), t0, 0); got != 0 {
		t.Fatalf("nothing bounds it: got %s, want 0", got)
	}
	if got := Left(m.Context(), t0, time.Second); got != time.Second {
		t.Fatalf("no record: got %s, want its own bound", got)
	}
	Record(m, t0.Add(time.Second))
	for _, tc := range []struct {
		at, own, want time.Duration
	}{
		{700 * time.Millisecond, time.Second, 300 * time.Millisecond},
		{700 * time.Millisecond, 0, 300 * time.Millisecond},
		{100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
		{2 * time.Second, time.Second, 1}, // spent: still a bound
	} {
		if got := Left(m.Context(), t0.Add(tc.at), tc.own); got != tc.want {
			t.Errorf("at %s with own bound %s: got %s, want %s", tc.at, tc.own, got, tc.want)
		}
	}
}
