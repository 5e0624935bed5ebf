package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

const testDLQ = "orders.dlq"

// failingHandler fails the first `fails` calls with err (every call when
// fails < 0), counting calls.
func failingHandler(calls *int, fails int, err error) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		*calls++
		if fails < 0 || *calls <= fails {
			return nil, err
		}
		return nil, nil
	}
}

func TestOutcomeTable(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		fails      int // -1: always
		opts       []dlq.Option
		panics     bool
		publishErr error
		wantCalls  int
		wantDead   bool
		wantClass  dlq.Class
		wantAck    bool
	}{
		{name: "success", err: nil, fails: 0, wantCalls: 1, wantAck: true},
		{name: "transient recovers on 3rd", err: errBoom, fails: 2, wantCalls: 3, wantAck: true},
		{name: "transient exhausted", err: errBoom, fails: -1, wantCalls: 5, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "transient max_attempts 1", err: errBoom, fails: -1, opts: []dlq.Option{dlq.WithMaxAttempts(1)}, wantCalls: 1, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "permanent", err: dlq.Permanent(errBoom), fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassPermanent, wantAck: true},
		{name: "wrapped permanent", err: fmt.Errorf("charge: %w", dlq.Permanent(errBoom)), fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassPermanent, wantAck: true},
		{name: "user type permanent", err: classedErr{"permanent"}, fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassPermanent, wantAck: true},
		{name: "user type validation", err: classedErr{"validation"}, fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassValidation, wantAck: true},
		{name: "user type exhausted", err: classedErr{"exhausted"}, fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "user type unknown class is transient", err: classedErr{"weird"}, fails: -1, wantCalls: 5, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "user type transient recovers", err: classedErr{"transient"}, fails: 1, wantCalls: 2, wantAck: true},
		{name: "raw panic recovered by the Retrier", panics: true, opts: []dlq.Option{}, fails: -2, wantCalls: 1, wantDead: true, wantClass: dlq.ClassPanic, wantAck: true},
		{name: "panic via inner Recover", panics: true, fails: -1, wantCalls: 1, wantDead: true, wantClass: dlq.ClassPanic, wantAck: true},
		{name: "classifier overrides to permanent", err: errBoom, fails: -1,
			opts:      []dlq.Option{dlq.WithClassifier(func(err error) dlq.Class { return dlq.ClassPermanent })},
			wantCalls: 1, wantDead: true, wantClass: dlq.ClassPermanent, wantAck: true},
		{name: "classifier empty falls back", err: dlq.Permanent(errBoom), fails: -1,
			opts:      []dlq.Option{dlq.WithClassifier(func(err error) dlq.Class { return "" })},
			wantCalls: 1, wantDead: true, wantClass: dlq.ClassPermanent, wantAck: true},
		{name: "classifier overrides permanent to transient", err: dlq.Permanent(errBoom), fails: 2,
			opts:      []dlq.Option{dlq.WithClassifier(func(err error) dlq.Class { return dlq.ClassTransient })},
			wantCalls: 3, wantAck: true},
		{name: "context canceled nacks", err: context.Canceled, fails: -1, wantCalls: 1, wantAck: false},
		{name: "wrapped context canceled nacks", err: fmt.Errorf("shutdown: %w", context.Canceled), fails: -1, wantCalls: 1, wantAck: false},
		{name: "deadline exceeded is transient", err: context.DeadlineExceeded, fails: -1, wantCalls: 5, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "max elapsed cuts retries", err: errBoom, fails: -1,
			opts: []dlq.Option{dlq.WithBackoff(dlq.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1, MaxAttempts: 10, MaxElapsed: 2500 * time.Millisecond})},
			// jitter 1: waits 1s, 1s; a third 1s wait would end at 3s > 2.5s
			wantCalls: 3, wantDead: true, wantClass: dlq.ClassExhausted, wantAck: true},
		{name: "dlq publish fails nacks", err: dlq.Permanent(errBoom), fails: -1, publishErr: errors.New("broker down"), wantCalls: 1, wantAck: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				pub := newRecPublisher()
				pub.setFail(tt.publishErr)
				opts := append([]dlq.Option{dlq.WithTopic(testDLQ), dlq.WithJitter(func() float64 { return 1 })}, tt.opts...)
				r, err := dlq.New(pub, opts...)
				if err != nil {
					t.Fatal(err)
				}
				calls := 0
				var h message.HandlerFunc = failingHandler(&calls, tt.fails, tt.err)
				if tt.panics {
					h = func(*message.Message) ([]*message.Message, error) { calls++; panic("kaboom") }
					if tt.fails != -2 {
						h = middleware.Recover(h)
					}
				}
				msg := message.NewMessage("m-1", []byte(`{"id":1}`))
				_, herr := r.Middleware(h)(msg)
				if calls != tt.wantCalls {
					t.Errorf("attempts: got %d, want %d", calls, tt.wantCalls)
				}
				if gotAck := herr == nil; gotAck != tt.wantAck {
					t.Errorf("ack: got %v, want %v (err %v)", gotAck, tt.wantAck, herr)
				}
				dead := pub.published(testDLQ)
				if gotDead := len(dead) == 1; gotDead != tt.wantDead || len(dead) > 1 {
					t.Fatalf("dead letters: got %d, want dead=%v", len(dead), tt.wantDead)
				}
				if tt.wantDead {
					md := dead[0].Metadata
					if got := md.Get(dlq.KeyErrorClass); got != string(tt.wantClass) {
						t.Errorf("class: got %q, want %q", got, tt.wantClass)
					}
					if got, want := md.Get(dlq.KeyAttempts), fmt.Sprint(tt.wantCalls); got != want {
						t.Errorf("levee_attempts: got %q, want %q", got, want)
					}
				}
				if tt.publishErr != nil {
					if !errors.Is(herr, dlq.ErrPublish) || !errors.Is(herr, tt.publishErr) {
						t.Errorf("error: got %v, want ErrPublish wrapping %v", herr, tt.publishErr)
					}
				}
			})
		})
	}
}

// TestBackoffScheduleExact checks the waits between attempts under synctest:
// with jitter 1 they are exactly min(max, initial*2^(n-1)); with jitter 0.5
// exactly half; and every delay reported to the hook is the one waited.
func TestBackoffScheduleExact(t *testing.T) {
	b := dlq.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, MaxAttempts: 6}
	for _, tc := range []struct {
		jitter float64
		want   []time.Duration
	}{
		{1, []time.Duration{20, 40, 80, 100, 100}},
		{0.5, []time.Duration{10, 20, 40, 50, 50}},
		{0, []time.Duration{0, 0, 0, 0, 0}},
	} {
		t.Run(fmt.Sprint("jitter=", tc.jitter), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				var reported []time.Duration
				r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithBackoff(b),
					dlq.WithJitter(func() float64 { return tc.jitter }),
					dlq.WithOnRetry(func(ri dlq.RetryInfo) {
						if ri.Attempt != len(reported)+1 {
							t.Errorf("hook attempt: got %d, want %d", ri.Attempt, len(reported)+1)
						}
						reported = append(reported, ri.Delay)
					}))
				if err != nil {
					t.Fatal(err)
				}
				var times []time.Time
				h := func(*message.Message) ([]*message.Message, error) {
					times = append(times, time.Now())
					return nil, errBoom
				}
				if _, err := r.Middleware(h)(message.NewMessage("m", nil)); err != nil {
					t.Fatalf("got %v, want dead-lettered (nil)", err)
				}
				if len(times) != 6 {
					t.Fatalf("attempts: got %d, want 6", len(times))
				}
				for i, w := range tc.want {
					want := w * time.Millisecond
					if got := times[i+1].Sub(times[i]); got != want {
						t.Errorf("gap %d: got %s, want %s", i+1, got, want)
					}
					if reported[i] != want {
						t.Errorf("reported delay %d: got %s, want %s", i+1, reported[i], want)
					}
				}
			})
		})
	}
}

// TestBackoffJitterBounds uses a real random source and checks every wait
// lies in [0, cap(n)] and matches the reported delay exactly.
func TestBackoffJitterBounds(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := dlq.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, MaxAttempts: 8}
		var reported []time.Duration
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithBackoff(b),
			dlq.WithOnRetry(func(ri dlq.RetryInfo) { reported = append(reported, ri.Delay) }))
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			reported = reported[:0]
			var times []time.Time
			h := func(*message.Message) ([]*message.Message, error) {
				times = append(times, time.Now())
				return nil, errBoom
			}
			_, _ = r.Middleware(h)(message.NewMessage("m", nil))
			for i := 1; i < len(times); i++ {
				gap, c := times[i].Sub(times[i-1]), b.Cap(i)
				if gap < 0 || gap > c {
					t.Fatalf("gap %d: got %s, want within [0, %s]", i, gap, c)
				}
				if gap != reported[i-1] {
					t.Fatalf("gap %d: waited %s, reported %s", i, gap, reported[i-1])
				}
			}
		}
	})
}

// TestMaxHoldDefersToRedelivery: a wait beyond max hold is not slept; the
// message is Nacked with RetryAfter = the delay, and the attempt count and
// the due time survive the redelivery through the in-process table.
func TestMaxHoldDefersToRedelivery(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		b := dlq.Backoff{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, MaxAttempts: 5}
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithMaxHold(2500*time.Millisecond),
			dlq.WithJitter(func() float64 { return 1 }))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		h := r.Middleware(failingHandler(&calls, -1, errBoom))
		msg := message.NewMessage("held", nil)
		begin := time.Now()
		// delivery 1: attempt 1, wait 1s, attempt 2; the next wait (2s) would end at 3s > 2.5s
		_, err = h(msg)
		var rl interface{ RetryAfter() time.Duration }
		if !errors.As(err, &rl) || !errors.Is(err, dlq.ErrRetryLater) || !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want a RetryAfter error wrapping ErrRetryLater and the handler error", err)
		}
		if got := rl.RetryAfter(); got != 2*time.Second {
			t.Errorf("RetryAfter: got %s, want 2s", got)
		}
		if calls != 2 || time.Since(begin) != time.Second {
			t.Errorf("delivery 1: got %d calls in %s, want 2 in 1s", calls, time.Since(begin))
		}
		if r.Pending() != 1 {
			t.Errorf("pending: got %d, want 1", r.Pending())
		}
		// An immediate redelivery (no native delay) waits out the 2s, which
		// fits the hold, then attempt 3; the next wait (4s) is deferred.
		_, err = h(msg)
		if !errors.As(err, &rl) || rl.RetryAfter() != 4*time.Second {
			t.Fatalf("delivery 2: got %v, want RetryAfter 4s", err)
		}
		if calls != 3 {
			t.Errorf("delivery 2: got %d calls, want 3", calls)
		}
		// A redelivery before the due time, with more than max hold left,
		// waits max hold and is Nacked again with the rest, without calling
		// the handler.
		before := time.Now()
		_, err = h(msg)
		if !errors.As(err, &rl) || rl.RetryAfter() != 1500*time.Millisecond || calls != 3 || time.Since(before) != 2500*time.Millisecond {
			t.Fatalf("early redelivery: got %v after %d calls in %s, want RetryAfter 1.5s, 3 calls, 2.5s", err, calls, time.Since(before))
		}
		time.Sleep(1500 * time.Millisecond) // the transport's native delay
		_, err = h(msg)                     // attempt 4; next wait 8s deferred
		if !errors.As(err, &rl) || rl.RetryAfter() != 8*time.Second || calls != 4 {
			t.Fatalf("delivery 4: got %v after %d calls, want RetryAfter 8s and 4 calls", err, calls)
		}
		time.Sleep(8 * time.Second)
		if _, err = h(msg); err != nil { // attempt 5 = max: dead-lettered
			t.Fatalf("last delivery: got %v, want dead-lettered", err)
		}
		if calls != 5 {
			t.Errorf("calls: got %d, want 5", calls)
		}
		dead := pub.published(testDLQ)
		if len(dead) != 1 {
			t.Fatalf("dead letters: got %d, want 1", len(dead))
		}
		md := dead[0].Metadata
		if md[dlq.KeyAttempts] != "5" || md[dlq.KeyErrorClass] != "exhausted" {
			t.Errorf("attempts/class: got %s/%s, want 5/exhausted", md[dlq.KeyAttempts], md[dlq.KeyErrorClass])
		}
		first, _ := dlq.ParseTime(md[dlq.KeyFirstFailureAt])
		last, _ := dlq.ParseTime(md[dlq.KeyLastFailureAt])
		// failures at 0, 1s, 3s, 7s, 15s
		if got := last.Sub(first); got != 15*time.Second {
			t.Errorf("last-first failure: got %s, want 15s", got)
		}
		if r.Pending() != 0 {
			t.Errorf("pending after dead letter: got %d, want 0", r.Pending())
		}
	})
}

// TestDeliveryCountSurvivesRedelivery: the transport's delivery count sets
// the attempt number even without the in-process table.
func TestDeliveryCountSurvivesRedelivery(t *testing.T) {
	tests := []struct {
		count      string
		wantCalls  int
		wantDead   bool
		wantAttmpt string
	}{
		{"1", 3, true, "3"},   // fresh: 3 attempts in process
		{"3", 1, true, "3"},   // two earlier deliveries: this is attempt 3 = max
		{"2", 2, true, "3"},   // attempt 2, retry, attempt 3
		{"99", 1, true, "99"}, // far past max
		{"1073741824", 1, true, "1073741824"},
		{"99999999999999999999", 3, true, "3"}, // garbage: ignored
		{"-4", 3, true, "3"},
		{"abc", 3, true, "3"},
		{"", 3, true, "3"},
		{"0", 3, true, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.count, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				pub := newRecPublisher()
				r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(3), dlq.WithAttemptTableSize(0))
				if err != nil {
					t.Fatal(err)
				}
				calls := 0
				msg := message.NewMessage("m", nil)
				msg.Metadata.Set(dlq.KeyDeliveryCount, tt.count)
				if _, err := r.Middleware(failingHandler(&calls, -1, errBoom))(msg); err != nil {
					t.Fatalf("got %v, want dead-lettered", err)
				}
				if calls != tt.wantCalls {
					t.Errorf("calls: got %d, want %d", calls, tt.wantCalls)
				}
				dead := pub.published(testDLQ)
				if len(dead) != 1 || dead[0].Metadata[dlq.KeyAttempts] != tt.wantAttmpt {
					t.Fatalf("dead letter attempts: got %v, want %s", dead, tt.wantAttmpt)
				}
				if v, ok := dead[0].Metadata[dlq.KeyDeliveryCount]; ok {
					t.Errorf("dead letter carries the control key %s=%q; want it stripped (attempts are in %s)", dlq.KeyDeliveryCount, v, dlq.KeyAttempts)
				}
			})
		})
	}
}

// TestPublishFailureLosesNothing: a failed DLQ publish Nacks; the
// redelivery (broker back) dead-letters it with the attempt count kept,
// without calling the handler again (it used to, once per failed publish:
// 5 calls and attempts 6 for max 3, found by the chaos suite).
func TestPublishFailureLosesNothing(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		var logged []string
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(3), dlq.WithLogger(&recLogger{errs: &logged}))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		h := r.Middleware(failingHandler(&calls, -1, errBoom))
		msg := message.NewMessage("p-1", []byte("payload"))
		pub.setFail(errors.New("broker down"))
		var last time.Time
		for i, wantDelay := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
			_, err := h(msg) // an immediate redelivery first waits the previous RetryAfter
			var pe *dlq.PublishError
			if !errors.As(err, &pe) || pe.Topic != testDLQ || !errors.Is(pe.Cause, errBoom) || !errors.Is(err, dlq.ErrPublish) {
				t.Fatalf("delivery %d: got %v, want *PublishError", i+1, err)
			}
			if pe.RetryAfter() != wantDelay {
				t.Errorf("delivery %d: RetryAfter got %s, want %s", i+1, pe.RetryAfter(), wantDelay)
			}
			if i > 0 && time.Since(last) != wantDelay/2 {
				t.Errorf("delivery %d: took %s, want %s (the previous RetryAfter)", i+1, time.Since(last), wantDelay/2)
			}
			last = time.Now()
		}
		if len(logged) != 3 {
			t.Errorf("logged errors: got %d, want 3", len(logged))
		}
		// 3 attempts on delivery 1, none on the redeliveries (already at max)
		if calls != 3 {
			t.Errorf("calls: got %d, want 3", calls)
		}
		if r.Pending() != 1 {
			t.Errorf("pending: got %d, want 1", r.Pending())
		}
		pub.setFail(nil)
		if _, err := h(msg); err != nil {
			t.Fatalf("got %v, want dead-lettered", err)
		}
		dead := pub.published(testDLQ)
		if len(dead) != 1 || string(dead[0].Payload) != "payload" || dead[0].Metadata[dlq.KeyAttempts] != "3" ||
			dead[0].Metadata[dlq.KeyErrorClass] != string(dlq.ClassExhausted) || calls != 3 {
			t.Fatalf("dead letters: got %d (attempts %q, class %q) after %d calls, want 1 with attempts 3, class exhausted, after 3 calls",
				len(dead), dead[0].Metadata[dlq.KeyAttempts], dead[0].Metadata[dlq.KeyErrorClass], calls)
		}
		if r.Pending() != 0 {
			t.Errorf("pending: got %d, want 0", r.Pending())
		}
	})
}

func TestWaitHonoursMessageContext(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := newRecPublisher()
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithJitter(func() float64 { return 1 }),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Hour, Max: time.Hour, Multiplier: 1, MaxAttempts: 3}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		msg := message.NewMessageWithContext(ctx, "c-1", nil)
		calls := 0
		done := make(chan error)
		go func() {
			_, err := r.Middleware(failingHandler(&calls, -1, errBoom))(msg)
			done <- err
		}()
		testkit.Advance(time.Minute)
		cancel()
		err = <-done
		if !errors.Is(err, dlq.ErrInterrupted) || !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want ErrInterrupted wrapping context.Canceled and the handler error", err)
		}
		if calls != 1 || pub.total() != 0 {
			t.Errorf("got %d calls and %d dead letters, want 1 and 0", calls, pub.total())
		}
	})
}

func TestNoTopicNacks(t *testing.T) {
	pub := newRecPublisher()
	r, err := dlq.New(pub) // default topic needs the subscribed topic
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Middleware(failingHandler(new(int), -1, dlq.Permanent(errBoom)))(message.NewMessage("x", nil))
	var pe *dlq.PublishError
	if !errors.Is(err, dlq.ErrNoTopic) || !errors.As(err, &pe) || !errors.Is(pe.Cause, errBoom) {
		t.Fatalf("got %v, want a *PublishError wrapping ErrNoTopic with the handler error as cause", err)
	}
	if pub.n != 0 {
		t.Errorf("publishes: got %d, want 0", pub.n)
	}
}

func TestTopicFunc(t *testing.T) {
	pub := newRecPublisher()
	r, err := dlq.New(pub, dlq.WithTopicFunc(func(s string) string { return "dead-letters" }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Middleware(failingHandler(new(int), -1, dlq.Permanent(errBoom)))(message.NewMessage("x", nil)); err != nil {
		t.Fatal(err)
	}
	if got := len(pub.published("dead-letters")); got != 1 {
		t.Errorf("dead letters on dead-letters: got %d, want 1", got)
	}
}

func TestNewValidates(t *testing.T) {
	pub := newRecPublisher()
	tests := []struct {
		name string
		pub  message.Publisher
		opts []dlq.Option
		key  string
	}{
		{"nil publisher", nil, nil, "publisher"},
		{"zero initial", pub, []dlq.Option{dlq.WithBackoff(dlq.Backoff{Max: 1, Multiplier: 1, MaxAttempts: 1})}, "initial"},
		{"max below initial", pub, []dlq.Option{dlq.WithBackoff(dlq.Backoff{Initial: 2, Max: 1, Multiplier: 1, MaxAttempts: 1})}, "max"},
		{"multiplier below 1", pub, []dlq.Option{dlq.WithBackoff(dlq.Backoff{Initial: 1, Max: 1, Multiplier: 0.5, MaxAttempts: 1})}, "multiplier"},
		{"zero attempts", pub, []dlq.Option{dlq.WithMaxAttempts(0)}, "max_attempts"},
		{"negative elapsed", pub, []dlq.Option{dlq.WithBackoff(dlq.Backoff{Initial: 1, Max: 1, Multiplier: 1, MaxAttempts: 1, MaxElapsed: -1})}, "max_elapsed"},
		{"negative hold", pub, []dlq.Option{dlq.WithMaxHold(-time.Second)}, "max_hold"},
		{"negative table", pub, []dlq.Option{dlq.WithAttemptTableSize(-1)}, "attempt_table_size"},
		{"tiny error length", pub, []dlq.Option{dlq.WithMaxErrorLength(3)}, "max_error_length"},
		{"nil jitter", pub, []dlq.Option{dlq.WithJitter(nil)}, "jitter"},
		{"nil logger", pub, []dlq.Option{dlq.WithLogger(nil)}, "logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dlq.New(tt.pub, tt.opts...)
			var se *dlq.SettingError
			if !errors.Is(err, dlq.ErrInvalidConfig) || !errors.As(err, &se) || se.Key != tt.key {
				t.Fatalf("got %v, want ErrInvalidConfig naming %q", err, tt.key)
			}
		})
	}
}

func TestWithValidator(t *testing.T) {
	pub := newRecPublisher()
	var topics []string
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithValidator(func(topic string, payload []byte) error {
		topics = append(topics, topic)
		if string(payload) != "ok" {
			return errors.New("payload is not ok")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := r.Middleware(failingHandler(&calls, 0, nil))
	if _, err := h(message.NewMessage("1", []byte("ok"))); err != nil || calls != 1 {
		t.Fatalf("valid: got %v after %d calls", err, calls)
	}
	if _, err := h(message.NewMessage("2", []byte("bad"))); err != nil || calls != 1 {
		t.Fatalf("invalid: got %v after %d calls, want dead-lettered without a call", err, calls)
	}
	dead := pub.published(testDLQ)
	if len(dead) != 1 || dead[0].Metadata[dlq.KeyErrorClass] != "validation" || dead[0].Metadata[dlq.KeyErrorType] != "*errors.errorString" {
		t.Fatalf("dead letters: got %v", dead)
	}
	if len(topics) != 2 || topics[0] != "" {
		t.Errorf("validator topics: got %q, want two empty (no router)", topics)
	}
}

// sizeLimitPublisher refuses a message whose payload and metadata exceed
// limit bytes, as NATS refuses one over its max_payload.
type sizeLimitPublisher struct {
	*recPublisher
	limit int
	tries *int // Publish calls, refused ones included
}

func (p sizeLimitPublisher) Publish(topic string, msgs ...*message.Message) error {
	*p.tries++
	for _, m := range msgs {
		n := len(m.Payload)
		for k, v := range m.Metadata {
			n += len(k) + len(v)
		}
		if n > p.limit {
			return fmt.Errorf("maximum payload exceeded: %d > %d", n, p.limit)
		}
	}
	return p.recPublisher.Publish(topic, msgs...)
}

// TestOversizedLetterIsCompacted: a dead letter the broker refuses as too
// large is published again without its bulk (the stack, validation
// errors, an error cut to 256 bytes), KeyCompacted naming what went; a
// letter refused once, or that loses nothing by compacting, is not.
func TestOversizedLetterIsCompacted(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		pub := sizeLimitPublisher{newRecPublisher(), 4096, new(int)}
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(1), dlq.WithMaxErrorLength(1024))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		long := errors.New(strings.Repeat("e", 1000))
		h := r.Middleware(failingHandler(&calls, -1, long))
		msg := message.NewMessage("big-1", []byte(strings.Repeat("p", 3000)))
		_, err = h(msg)
		var pe *dlq.PublishError
		if !errors.As(err, &pe) {
			t.Fatalf("first dead-lettering: got %v, want a *PublishError (the whole letter is refused once before compacting)", err)
		}
		if _, err := h(msg); err != nil {
			t.Fatalf("redelivery: got %v, want the compacted letter published", err)
		}
		dead := pub.published(testDLQ)
		if len(dead) != 1 {
			t.Fatalf("got %d letters, want 1", len(dead))
		}
		md := dead[0].Metadata
		if md[dlq.KeyCompacted] != dlq.KeyError || len(md[dlq.KeyError]) > dlq.CompactErrorLength || string(dead[0].Payload) != string(msg.Payload) {
			t.Fatalf("letter: compacted %q, error of %d bytes, payload of %d; want levee_error cut to %d, the payload whole",
				md[dlq.KeyCompacted], len(md[dlq.KeyError]), len(dead[0].Payload), dlq.CompactErrorLength)
		}
		if calls != 1 {
			t.Errorf("handler calls: got %d, want 1", calls)
		}

		// A panic's stack goes too (levee_error fits, so it is kept).
		stack := &levee.PanicError{Value: "boom", Stack: []byte("goroutine 1 [running]:\n" + strings.Repeat("main.f()\n\t/x.go:1\n", 200))}
		hp := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, stack })
		pm := message.NewMessage("big-3", []byte(strings.Repeat("p", 1000)))
		if _, err := hp(pm); !errors.As(err, &pe) {
			t.Fatalf("panic letter, first delivery: got %v, want a *PublishError", err)
		}
		if _, err := hp(pm); err != nil {
			t.Fatalf("panic letter, redelivery: got %v, want the compacted letter published", err)
		}
		dead = pub.published(testDLQ)
		if md := dead[len(dead)-1].Metadata; md[dlq.KeyCompacted] != dlq.KeyStack || md[dlq.KeyStack] != "" || md[dlq.KeyError] != "levee: panic: boom" {
			t.Fatalf("panic letter: compacted %q, stack of %d bytes, error %q; want the stack dropped, the error kept", md[dlq.KeyCompacted], len(md[dlq.KeyStack]), md[dlq.KeyError])
		}

		// A letter compacting cannot shrink (a short error, no stack) is
		// not published again compacted; from the third refusal on it is
		// tried cut to its core (the publisher does not say why it
		// refuses), which does not fit either: it stays Nacked.
		short := r.Middleware(failingHandler(&calls, -1, errors.New("short")))
		before := *pub.tries
		sm := message.NewMessage("big-4", []byte(strings.Repeat("p", 4090)))
		for i := range 3 {
			if _, err := short(sm); !errors.As(err, &pe) {
				t.Fatalf("delivery %d of a letter compacting cannot shrink: got %v, want a *PublishError", i+1, err)
			}
		}
		if tries := *pub.tries - before; tries != 4 {
			t.Errorf("%d publishes for 3 deliveries, want 4 (no compacted retry, a core one at the third)", tries)
		}

		// A payload too large even for a compact letter stays Nacked.
		huge := message.NewMessage("big-2", []byte(strings.Repeat("p", 4000)))
		for i := range 3 {
			if _, err := h(huge); !errors.As(err, &pe) {
				t.Fatalf("delivery %d of a letter that never fits: got %v, want a *PublishError (Nack)", i+1, err)
			}
		}
	})
}
