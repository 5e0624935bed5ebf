package dlq_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/telemetry"
)

// A confirmed dead letter is reported to the outer tracing and metrics
// layers through the Outcome in the message context (outcome
// dead_lettered, with its class); a failed dead-letter publish and a
// handled message are not. The error that was dead-lettered is recorded
// too, for the consumer span's error.type.
func TestDeadLetterMarksOutcome(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		pubErr    error
		wantDead  bool
		wantClass string
	}{
		{name: "permanent", err: dlq.Permanent(errBoom), wantDead: true, wantClass: "permanent"},
		{name: "handled", err: nil},
		{name: "publish fails", err: dlq.Permanent(errBoom), pubErr: errors.New("down")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := newRecPublisher()
			pub.setFail(tt.pubErr)
			r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(1))
			if err != nil {
				t.Fatal(err)
			}
			h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, tt.err })
			ctx, rec := telemetry.WithOutcome(context.Background())
			_, _ = h(message.NewMessageWithContext(ctx, "u", []byte("x")))
			class, dead := rec.DeadLettered()
			if dead != tt.wantDead || class != tt.wantClass {
				t.Fatalf("got dead-lettered %v class %q, want %v %q", dead, class, tt.wantDead, tt.wantClass)
			}
			// The error goes with it: the consumer span's error.type.
			if got := rec.Err(); dead && (got == nil || !errors.Is(got, errBoom)) {
				t.Errorf("dead-lettered error %v, want the handler's %v", got, errBoom)
			}
		})
	}
}
