package tracing_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/tracing"
)

// TestReplayKeepsTheOriginalTracestate: StartReplay moves the dead
// letter's tracestate with its traceparent (dropping one an earlier replay
// left, which belongs to another trace), and the replayed message's
// consumer span links to the original span context with that trace state.
func TestReplayKeepsTheOriginalTracestate(t *testing.T) {
	for _, tc := range []struct{ name, tracestate, stale, want string }{
		{"with a tracestate", "vendor=a1,other=b2", "", "vendor=a1,other=b2"},
		{"none, one left by an earlier replay", "", "old=x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off, err := tracing.New()
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage("dl-1", nil)
			msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
			if tc.tracestate != "" {
				msg.Metadata.Set(tracing.KeyTracestate, tc.tracestate)
			}
			if tc.stale != "" {
				msg.Metadata.Set(levee.KeyOriginalTracestate, tc.stale)
			}
			_, span := off.StartReplay(context.Background(), "orders", msg)
			span.End()
			if got := msg.Metadata.Get(levee.KeyOriginalTracestate); got != tc.want {
				t.Errorf("%s = %q, want %q", levee.KeyOriginalTracestate, got, tc.want)
			}

			r := newRecorded(t)
			if _, err := call(r.tracer(t).Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
				t.Fatal(err)
			}
			l := r.one(t, "process").Links()
			if len(l) != 1 || l[0].SpanContext.SpanID() != mustSpanID(t, testSpanID) {
				t.Fatalf("links = %v, want one to the original span %s", l, testSpanID)
			}
			if got := l[0].SpanContext.TraceState().String(); got != tc.want {
				t.Errorf("link trace state = %q, want %q", got, tc.want)
			}
		})
	}
}
