package dlqtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// deepPanic recurses n times, then panics: a stack longer than
// dlq.MaxStackLength.
func deepPanic(n int) {
	if n == 0 {
		panic("levee/dlqtest: deep panic ✗")
	}
	deepPanic(n - 1)
}

// panicLetterKeepsStack is the PanicLetterKeepsStack subtest of Run: a
// panic's dead letter, as dlq.Retrier writes it (its stack at the full
// dlq.MaxStackLength), goes through dlqops.NewRecord and the store and
// comes back with its stack and code location byte for byte, so `levee
// dlq show` can print them.
func panicLetterKeepsStack(t *testing.T, newStore NewStore) {
	pub := &recPublisher{}
	r, err := dlq.New(pub, dlq.WithTopic("orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("panic-1", []byte(`{}`))
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		deepPanic(300)
		return nil, nil
	})(msg); err != nil {
		t.Fatal(err)
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(pub.msgs))
	}
	stack := pub.msgs[0].Metadata[dlq.KeyStack]
	if len(stack) < dlq.MaxStackLength-8 || !strings.Contains(stack, "deepPanic") {
		t.Fatalf("the letter's stack is %d bytes, want about %d with deepPanic in it", len(stack), dlq.MaxStackLength)
	}
	rec := dlqops.NewRecord(pub.msgs[0], "orders.dlq", time.Now())
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{dlq.KeyStack, dlq.KeyCodeLocation, dlq.KeyErrorClass} {
		if got.Metadata[k] != pub.msgs[0].Metadata[k] {
			t.Errorf("%s: stored %d bytes, want the letter's %d bytes", k, len(got.Metadata[k]), len(pub.msgs[0].Metadata[k]))
		}
	}
	if got.Truncated != "" {
		t.Errorf("a panic's letter was cut by the store: %s", got.Truncated)
	}
}
