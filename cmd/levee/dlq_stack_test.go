package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// chargeCard stands for a service's handler that panics (a test file
// plays a user: its frames are the project's code).
func chargeCard(msg *message.Message) ([]*message.Message, error) {
	lines := []string{}
	_ = lines[len(msg.Payload)] // index out of range: the payload has no lines
	return nil, nil
}

// End to end: a handler panics under a dlq.Retrier, the letter is stored
// as the monitor stores it, and `levee dlq show` prints where in the
// service's code it panicked and the stack.
func TestShowPanicEndToEnd(t *testing.T) {
	cmd, s, _, out, errb := dlqTestCmd(t)
	pub := &dlqTestPublisher{}
	r, err := dlq.New(pub, dlq.WithTopic("orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Middleware(chargeCard)(message.NewMessage("card-1", []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(pub.msgs))
	}
	rec := dlqops.NewRecord(pub.msgs[0], "orders.dlq", time.Now())
	if _, err := s.Add(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if code := cmd.run(context.Background(), []string{"show", rec.ID}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, want := range []string{
		"error class:",
		"code location:",
		"levee/cmd/levee.chargeCard (",
		"dlq_stack_test.go:",
		"stack (levee_stack, ",
		"\n  github.com/levee-dev/levee/cmd/levee.chargeCard(",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}
