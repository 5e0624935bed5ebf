package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// dlqNopPublisher discards dead letters.
type dlqNopPublisher struct{}

func (dlqNopPublisher) Publish(string, ...*message.Message) error { return nil }
func (dlqNopPublisher) Close() error                              { return nil }

// dlqUnusedAttempts is an attempt store the success path must never call.
type dlqUnusedAttempts struct{ b *testing.B }

func (u dlqUnusedAttempts) Fail(context.Context, string, string, time.Time, time.Duration) (int, time.Time, error) {
	u.b.Error("the success path called the attempt store")
	return 0, time.Time{}, errors.New("unused")
}

// dlqUnusedReader is an attempt store that can read counts
// (dlq.AttemptReader), which a first delivery must never read.
type dlqUnusedReader struct{ dlqUnusedAttempts }

func (u dlqUnusedReader) Attempts(context.Context, string, string, time.Time) (int, time.Time, error) {
	u.b.Error("a first delivery read the attempt store")
	return 0, time.Time{}, errors.New("unused")
}

func dlqOKHandler(*message.Message) ([]*message.Message, error) { return nil, nil }

// dlqWatermill is what a Watermill user composes today: PoisonQueue outside
// Retry.
func dlqWatermill(b *testing.B) message.HandlerFunc {
	b.Helper()
	pq, err := wmw.PoisonQueue(dlqNopPublisher{}, "orders.dlq")
	if err != nil {
		b.Fatal(err)
	}
	retry := wmw.Retry{MaxRetries: 4, InitialInterval: 100 * time.Millisecond, MaxInterval: 10 * time.Second, Multiplier: 2}
	return pq(retry.Middleware(dlqOKHandler))
}

func dlqLevee(b *testing.B) message.HandlerFunc {
	b.Helper()
	r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	return r.Middleware(dlqOKHandler)
}

// dlqTableBusy is the dlq while its attempt table holds another message's
// record (a message deferred and not back yet, or a stale record until it
// expires): each success then looks itself up, sweeps (one atomic load
// between the once-a-second scans) and forgets itself.
func dlqTableBusy(b *testing.B) message.HandlerFunc {
	b.Helper()
	r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if msg.UUID == "deferred" {
			return nil, levee.Defer(time.Minute, errors.New("shed"))
		}
		return nil, nil
	})
	if _, err := h(message.NewMessage("deferred", nil)); !levee.IsDeferral(err) || r.Pending() != 1 {
		b.Fatalf("setup: got %v and %d entries, want a deferral and 1", err, r.Pending())
	}
	return h
}

// BenchmarkDLQSuccess measures the success-path overhead of the dlq slot
// against a bare handler and Watermill's Retry+PoisonQueue, in the same run.
func BenchmarkDLQSuccess(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    func(*testing.B) message.HandlerFunc
	}{
		{"bare", func(*testing.B) message.HandlerFunc { return dlqOKHandler }},
		{"levee", dlqLevee},
		{"levee_maxhold", func(b *testing.B) message.HandlerFunc {
			r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"), dlq.WithMaxHold(30*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			return r.Middleware(dlqOKHandler)
		}},
		{"levee_attempt_store", func(b *testing.B) message.HandlerFunc {
			r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"), dlq.WithAttemptStore(dlqUnusedAttempts{b}))
			if err != nil {
				b.Fatal(err)
			}
			return r.Middleware(dlqOKHandler)
		}},
		{"levee_attempt_reader", func(b *testing.B) message.HandlerFunc {
			r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"), dlq.WithAttemptStore(dlqUnusedReader{dlqUnusedAttempts{b}}))
			if err != nil {
				b.Fatal(err)
			}
			return r.Middleware(dlqOKHandler)
		}},
		{"levee_table_busy", dlqTableBusy},
		{"watermill_retry_poison", dlqWatermill},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.h(b)
			msg := message.NewMessage("bench", []byte(`{"id":1}`))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"_parallel", func(b *testing.B) {
			h := bc.h(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := message.NewMessage("bench", []byte(`{"id":1}`))
				for pb.Next() {
					if _, err := h(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// dlqInStack is the dlq slot with a Levee layer between it and the
// handler, set as a plain func (the letter cannot name the handler) or as
// a Layer told the handler (config's way: the letter names it).
func dlqInStack(b *testing.B, located bool) message.HandlerFunc {
	b.Helper()
	r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	s := middleware.NewStack().Timeout(middleware.Recover)
	if located {
		s.SetLayer(middleware.SlotDLQ, r, r.Label()).Locate(dlqOKHandler)
	} else {
		s.DLQ(r.Middleware)
	}
	return s.Middleware(dlqOKHandler)
}

// BenchmarkDLQStackLocated is the success path of the dlq inside a Stack
// without and with the handler's location (resolved once, when the stack
// is built), in the same run: naming the handler costs nothing per
// message.
func BenchmarkDLQStackLocated(b *testing.B) {
	for _, located := range []bool{false, true} {
		name := "plain"
		if located {
			name = "located"
		}
		b.Run(name, func(b *testing.B) {
			h := dlqInStack(b, located)
			msg := message.NewMessage("bench", []byte(`{"id":1}`))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDLQPermanentFailure measures dead-lettering one message
// (classification, metadata, fingerprint, publish to a discarding
// publisher) against Watermill's PoisonQueue.
func BenchmarkDLQPermanentFailure(b *testing.B) {
	fail := func(*message.Message) ([]*message.Message, error) {
		return nil, dlq.Permanent(errors.New("order 12345 rejected: card 4242 declined"))
	}
	r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	pq, err := wmw.PoisonQueue(dlqNopPublisher{}, "orders.dlq")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    message.HandlerFunc
	}{
		{"levee", r.Middleware(fail)},
		{"watermill_poison", pq(fail)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := message.NewMessage("bench", []byte(`{"id":1}`))
				msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				if _, err := bc.h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDLQFingerprint measures the grouping key of one failure.
func BenchmarkDLQFingerprint(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = dlq.Fingerprint("*errors.errorString", "order 3f2504e0-4f89-11d3-9a0c-0305e82c3301 rejected: card 4242 declined at 0xc000123abc")
	}
}

// BenchmarkDLQPanic measures dead-lettering a panic: recovering it with
// its stack, and, for Levee, keeping the stack (8 KiB at most), finding the
// first frame of the project's code and grouping by it; against
// Watermill's Recoverer inside PoisonQueue, which also takes the stack.
func BenchmarkDLQPanic(b *testing.B) {
	boom := func(*message.Message) ([]*message.Message, error) { panic("order 12345: nil customer") }
	r, err := dlq.New(dlqNopPublisher{}, dlq.WithTopic("orders.dlq"))
	if err != nil {
		b.Fatal(err)
	}
	pq, err := wmw.PoisonQueue(dlqNopPublisher{}, "orders.dlq")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    message.HandlerFunc
	}{
		{"levee", r.Middleware(boom)},
		{"watermill_recoverer_poison", pq(wmw.Recoverer(boom))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := message.NewMessage("bench", []byte(`{"id":1}`))
				if _, err := bc.h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
