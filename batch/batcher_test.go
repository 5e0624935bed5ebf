package batch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/testkit"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestNewRejectsInvalidSettings(t *testing.T) {
	nop := func(context.Context, []*message.Message) error { return nil }
	tests := []struct {
		name    string
		fn      batch.Func
		opts    []batch.Option
		wantKey string
	}{
		{"nil func", nil, nil, "batch func is nil"},
		{"zero max size", nop, []batch.Option{batch.WithMaxSize(0)}, "max_size"},
		{"negative max size", nop, []batch.Option{batch.WithMaxSize(-1)}, "max_size"},
		{"zero max bytes", nop, []batch.Option{batch.WithMaxBytes(0)}, "max_bytes"},
		{"negative max bytes", nop, []batch.Option{batch.WithMaxBytes(-5)}, "max_bytes"},
		{"zero max wait", nop, []batch.Option{batch.WithMaxWait(0)}, "max_wait"},
		{"negative max wait", nop, []batch.Option{batch.WithMaxWait(-time.Second)}, "max_wait"},
		{"zero max in flight", nop, []batch.Option{batch.WithMaxInFlight(0)}, "max_in_flight"},
		{"negative max in flight", nop, []batch.Option{batch.WithMaxInFlight(-2)}, "max_in_flight"},
		{"negative max hold", nop, []batch.Option{batch.WithMaxHold(-time.Second)}, "max_hold"},
		{"max hold not above max wait", nop, []batch.Option{batch.WithMaxWait(time.Second), batch.WithMaxHold(time.Second)}, "max_hold"},
		{"negative concurrency", nop, []batch.Option{batch.WithConcurrency(-1)}, "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := batch.New(tt.fn, tt.opts...)
			if err == nil {
				_ = b.Close()
				t.Fatalf("got nil error, want one naming %q", tt.wantKey)
			}
			if !errors.Is(err, batch.ErrInvalidConfig) {
				t.Errorf("got %v, want it to wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("got %q, want it to name %q", err, tt.wantKey)
			}
		})
	}
}

func TestTriggers(t *testing.T) {
	tests := []struct {
		name        string
		opts        []batch.Option
		payload     string
		n           int
		wait        time.Duration // fake time to let pass after sending
		wantBatches [][]string
		wantPending int // messages still waiting at the end
	}{
		{
			name: "max size flushes at once",
			opts: []batch.Option{batch.WithMaxSize(3), batch.WithMaxWait(time.Hour)},
			n:    7, payload: "x",
			wantBatches: [][]string{{"m0", "m1", "m2"}, {"m3", "m4", "m5"}},
			wantPending: 1,
		},
		{
			name: "max bytes flushes before the batch would overflow",
			opts: []batch.Option{batch.WithMaxBytes(10), batch.WithMaxWait(time.Hour)},
			n:    5, payload: "abcd",
			wantBatches: [][]string{{"m0", "m1"}, {"m2", "m3"}},
			wantPending: 1,
		},
		{
			name: "max bytes reached exactly",
			opts: []batch.Option{batch.WithMaxBytes(8), batch.WithMaxWait(time.Hour)},
			n:    4, payload: "abcd",
			wantBatches: [][]string{{"m0", "m1"}, {"m2", "m3"}},
		},
		{
			name: "oversized message travels alone",
			opts: []batch.Option{batch.WithMaxBytes(3), batch.WithMaxWait(time.Hour)},
			n:    2, payload: "abcd",
			wantBatches: [][]string{{"m0"}, {"m1"}},
		},
		{
			name: "max wait not yet reached",
			opts: []batch.Option{batch.WithMaxSize(100), batch.WithMaxWait(50 * time.Millisecond)},
			n:    4, payload: "x", wait: 49 * time.Millisecond,
			wantPending: 4,
		},
		{
			name: "max wait flushes a partial batch",
			opts: []batch.Option{batch.WithMaxSize(100), batch.WithMaxWait(50 * time.Millisecond)},
			n:    4, payload: "x", wait: 50 * time.Millisecond,
			wantBatches: [][]string{{"m0", "m1", "m2", "m3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &sink{}
				b := mustNew(t, s.fn, tt.opts...)
				d := newDelivery()
				d.send(b, msgs("m", tt.n, tt.payload)...)
				testkit.Advance(tt.wait)
				got := s.batches()
				if !slices.EqualFunc(got, tt.wantBatches, slices.Equal) {
					t.Errorf("got batches %v, want %v", got, tt.wantBatches)
				}
				pending := 0
				for _, m := range msgs("m", tt.n, "") {
					if _, ok := d.result(m.UUID); !ok {
						pending++
					}
				}
				if pending != tt.wantPending {
					t.Errorf("got %d messages waiting, want %d", pending, tt.wantPending)
				}
				_ = b.Close()
				d.wg.Wait()
				d.wantDone(t, nil, ids(msgs("m", tt.n, ""))...)
			})
		})
	}
}

func TestMaxWaitCountsFromFirstMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		b := mustNew(t, s.fn, batch.WithMaxWait(50*time.Millisecond))
		d := newDelivery()
		d.send(b, message.NewMessage("a", nil))
		testkit.Advance(40 * time.Millisecond)
		d.send(b, message.NewMessage("b", nil))
		testkit.Advance(10 * time.Millisecond)
		if got, want := s.batches(), [][]string{{"a", "b"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("got %v, want %v after 50ms since the first message", got, want)
		}
		d.wantDone(t, nil, "a", "b")
	})
}

func TestMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		s := &sink{gate: gate}
		b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxInFlight(2), batch.WithMaxWait(time.Hour))
		d := newDelivery()
		all := msgs("m", 7, "x")
		d.send(b, all...)
		// Three full batches: two run, one waits for a slot; m6 is open.
		if got := len(s.batches()); got != 2 {
			t.Fatalf("got %d batches running, want 2 (max_in_flight)", got)
		}
		d.wantPending(t, ids(all)...)
		gate <- struct{}{} // finish one batch
		synctest.Wait()
		got := s.batches()
		if want := [][]string{{"m0", "m1"}, {"m2", "m3"}, {"m4", "m5"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("got %v, want %v (queued batch started in order)", got, want)
		}
		close(gate)
		synctest.Wait()
		d.wantDone(t, nil, ids(all[:6])...)
		d.wantPending(t, "m6")
		_ = b.Close()
		d.wg.Wait()
		d.wantDone(t, nil, "m6")
	})
}

func TestConcurrentBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running, peak int
		var mu = make(chan struct{}, 1)
		fn := func(ctx context.Context, ms []*message.Message) error {
			mu <- struct{}{}
			running++
			peak = max(peak, running)
			<-mu
			time.Sleep(10 * time.Millisecond)
			mu <- struct{}{}
			running--
			<-mu
			if len(ms) > 5 {
				return errors.New("batch too big")
			}
			return nil
		}
		b := mustNew(t, fn, batch.WithMaxSize(5), batch.WithMaxInFlight(3), batch.WithMaxWait(5*time.Millisecond))
		d := newDelivery()
		all := msgs("m", 200, "x")
		for _, m := range all { // concurrent delivery, no ordering
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				_, err := b.Handler(m)
				d.mu.Lock()
				d.results[m.UUID], d.done[m.UUID] = err, true
				d.mu.Unlock()
			}()
		}
		d.wg.Wait()
		d.wantDone(t, nil, ids(all)...)
		if peak != 3 {
			t.Errorf("got peak %d batches at once, want 3", peak)
		}
	})
}

func TestPartialFailure(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	tests := []struct {
		name    string
		ret     func(ms []*message.Message) error
		wantErr map[string]error // per message; missing: success
		wantAll error            // every message fails with this
	}{
		{
			name:    "by index",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).Fail(1, errA).Fail(3, errB) },
			wantErr: map[string]error{"m1": errA, "m3": errB},
		},
		{
			name:    "by uuid",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).FailUUID("m2", errA) },
			wantErr: map[string]error{"m2": errA},
		},
		{
			name: "wrapped, index and uuid on one message",
			ret: func([]*message.Message) error {
				return errors.Join(errors.New("insert"), (&batch.Errors{}).Fail(0, errA).FailUUID("m0", errB))
			},
			wantErr: map[string]error{"m0": errB},
		},
		{
			name: "empty set is success",
			ret:  func([]*message.Message) error { return &batch.Errors{} },
		},
		{
			name: "nil *Errors is success",
			ret:  func([]*message.Message) error { var e *batch.Errors; return e },
		},
		{
			name:    "unknown index fails the whole batch",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).Fail(4, errA) },
			wantAll: batch.ErrInvalidResult,
		},
		{
			name:    "negative index fails the whole batch",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).Fail(-1, errA) },
			wantAll: batch.ErrInvalidResult,
		},
		{
			name:    "unknown uuid fails the whole batch",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).Fail(0, errA).FailUUID("nope", errB) },
			wantAll: batch.ErrInvalidResult,
		},
		{
			name:    "nil error fails the whole batch",
			ret:     func([]*message.Message) error { return (&batch.Errors{}).Fail(2, nil) },
			wantAll: batch.ErrInvalidResult,
		},
		{
			name:    "other error fails the whole batch",
			ret:     func([]*message.Message) error { return errA },
			wantAll: errA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &sink{ret: tt.ret}
				b := mustNew(t, s.fn, batch.WithMaxSize(4))
				d := newDelivery()
				all := msgs("m", 4, "x")
				d.send(b, all...)
				d.wg.Wait()
				for _, m := range all {
					err, _ := d.result(m.UUID)
					want := tt.wantErr[m.UUID]
					if tt.wantAll != nil {
						want = tt.wantAll
					}
					switch {
					case want == nil && err != nil:
						t.Errorf("%s: got %v, want success", m.UUID, err)
					case want != nil && !errors.Is(err, want):
						t.Errorf("%s: got %v, want %v", m.UUID, err, want)
					}
				}
			})
		})
	}
}

var errFlaky = errors.New("flaky")

// TestPanicFailsOnlyItsMessages: a panic fails only the messages that
// panic when the func has them alone. Before, it failed every message of
// the batch with the *levee.PanicError, so the dlq dead-lettered the
// healthy neighbours of one poison message with class panic and the
// poison's reason. The batcher now splits a batch that panicked in halves
// and runs each again until the messages that panic are alone.
func TestPanicFailsOnlyItsMessages(t *testing.T) {
	panicsOn := func(poison ...string) func([]*message.Message) error {
		return func(msgs []*message.Message) error {
			for _, m := range msgs {
				if slices.Contains(poison, m.UUID) {
					panic("boom " + m.UUID)
				}
			}
			return nil
		}
	}
	tests := []struct {
		name   string
		ret    func([]*message.Message) error
		n      int
		poison []string         // messages that must fail with their own *PanicError
		other  map[string]error // the results of the others (absent: success)
	}{
		{"one poison among five", panicsOn("m3"), 5, []string{"m3"}, nil},
		{"two poisons", panicsOn("m0", "m4"), 5, []string{"m0", "m4"}, nil},
		{"every message panics", panicsOn("m0", "m1", "m2"), 3, []string{"m0", "m1", "m2"}, nil},
		{"a neighbour's own failure is kept", func(msgs []*message.Message) error {
			failed := &batch.Errors{}
			for i, m := range msgs {
				switch m.UUID {
				case "m1":
					panic("boom m1")
				case "m2":
					failed.Fail(i, errFlaky)
				}
			}
			return failed
		}, 4, []string{"m1"}, map[string]error{"m2": errFlaky}},
		{"a panic alone", panicsOn("m0"), 1, []string{"m0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &sink{ret: tt.ret}
				b := mustNew(t, s.fn, batch.WithMaxSize(tt.n))
				d := newDelivery()
				all := msgs("m", tt.n, "x")
				d.send(b, all...)
				d.wg.Wait()
				for _, m := range all {
					err, _ := d.result(m.UUID)
					if !slices.Contains(tt.poison, m.UUID) {
						want := tt.other[m.UUID]
						if !errors.Is(err, want) || (want == nil && err != nil) {
							t.Errorf("%s: got %v, want %v (a neighbour of the panic)", m.UUID, err, want)
						}
						continue
					}
					var pe *levee.PanicError
					if !errors.As(err, &pe) || pe.Value != "boom "+m.UUID || len(pe.Stack) == 0 {
						t.Fatalf("%s: got %v, want its own *PanicError (value %q) with a stack", m.UUID, err, "boom "+m.UUID)
					}
					var c interface{ ErrorClass() string }
					if !errors.As(err, &c) || c.ErrorClass() != "panic" {
						t.Errorf("%s: got class of %v, want panic", m.UUID, err)
					}
				}
				// Every call after the first runs a part of the batch that
				// panicked: no message is in two calls that did not panic.
				for _, c := range s.batches()[1:] {
					if len(c) > (tt.n+1)/2 {
						t.Errorf("isolation call of %d messages %v, want at most half the batch", len(c), c)
					}
				}
			})
		})
	}
}

func TestCancellationMidBatch(t *testing.T) {
	t.Run("before flush, the message leaves the batch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(3), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx, cancel := context.WithCancel(context.Background())
			m0, m1 := message.NewMessage("m0", []byte("x")), message.NewMessage("m1", []byte("x"))
			m1.SetContext(ctx)
			d.send(b, m0, m1)
			cancel()
			synctest.Wait()
			d.wantDone(t, context.Canceled, "m1")
			// m1's slot is free again: two more fill the batch of three.
			d.send(b, msgs("n", 2, "x")...)
			d.wg.Wait()
			if got, want := s.batches(), [][]string{{"m0", "n0", "n1"}}; !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("got %v, want %v (m1 not passed to the func)", got, want)
			}
			d.wantDone(t, nil, "m0", "n0", "n1")
		})
	})
	t.Run("while queued, the message leaves the batch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			gate := make(chan struct{})
			s := &sink{gate: gate}
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxInFlight(1), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx, cancel := context.WithCancel(context.Background())
			q := msgs("q", 2, "x")
			q[1].SetContext(ctx)
			d.send(b, msgs("r", 2, "x")...) // running
			d.send(b, q...)                 // queued behind it
			cancel()
			synctest.Wait()
			d.wantDone(t, context.Canceled, "q1")
			close(gate)
			d.wg.Wait()
			if got, want := s.batches(), [][]string{{"r0", "r1"}, {"q0"}}; !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("got %v, want %v", got, want)
			}
			d.wantDone(t, nil, "r0", "r1", "q0")
		})
	})
	t.Run("all leave an open batch, the func is not called", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(3), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			all := msgs("m", 2, "x")
			for _, m := range all {
				m.SetContext(ctx)
			}
			d.send(b, all...)
			d.wg.Wait()
			d.wantDone(t, context.DeadlineExceeded, "m0", "m1")
			// The func never had them: a deferral, no attempt (found by the
			// chaos suite: the dlq counted an attempt the handler never made).
			for _, id := range []string{"m0", "m1"} {
				if err, _ := d.result(id); !levee.IsDeferral(err) {
					t.Errorf("%s: got %v, want a deferral (the func never ran)", id, err)
				}
			}
			testkit.Advance(time.Second)
			if got := s.batches(); len(got) != 0 {
				t.Errorf("got calls %v, want none", got)
			}
		})
	})
	t.Run("while processing, the message waits for the verdict", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			gate := make(chan struct{})
			s := &sink{gate: gate}
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx0, cancel0 := context.WithCancel(context.Background())
			defer cancel0()
			all := msgs("m", 2, "x")
			all[0].SetContext(ctx0)
			d.send(b, all...)
			cancel0()
			synctest.Wait()
			d.wantPending(t, "m0", "m1") // outcome unknown: neither ack nor Nack yet
			if err := s.call(0).ctx.Err(); err != nil {
				t.Fatalf("batch context ended while m1 still waits: %v", err)
			}
			close(gate) // the func writes both
			d.wg.Wait()
			d.wantDone(t, nil, "m0", "m1") // processed: acked, not redelivered
		})
	})
	t.Run("while processing, all contexts end: the func's context is cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{gate: make(chan struct{})} // never opened: the func waits for its context
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx0, cancel0 := context.WithCancel(context.Background())
			ctx1, cancel1 := context.WithCancel(context.Background())
			all := msgs("m", 2, "x")
			all[0].SetContext(ctx0)
			all[1].SetContext(ctx1)
			d.send(b, all...)
			cancel0()
			synctest.Wait()
			fctx := s.call(0).ctx
			if fctx.Err() != nil {
				t.Fatalf("batch context ended while m1 still waits: %v", fctx.Err())
			}
			cancel1()
			d.wg.Wait()
			if fctx.Err() == nil {
				t.Errorf("batch context still live after every message's context ended")
			}
			d.wantDone(t, context.Canceled, "m0", "m1") // the func's verdict: Nack
		})
	})
	t.Run("while processing, every deadline passes: each message gets its deadline, not Canceled", func(t *testing.T) {
		// Found by the chaos suite: a batch func that hangs until every
		// message times out saw its context cancelled and returned
		// context.Canceled, which the dlq counts as no attempt (a shutdown),
		// so a poison message in a hanging batch was retried without end.
		synctest.Test(t, func(t *testing.T) {
			s := &sink{gate: make(chan struct{})} // never opened: the func waits for its context
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx0, cancel0 := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel0()
			ctx1, cancel1 := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel1()
			all := msgs("m", 2, "x")
			all[0].SetContext(ctx0)
			all[1].SetContext(ctx1)
			d.send(b, all...)
			d.wg.Wait()
			if err := s.call(0).ctx.Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("batch context: got %v, want cancelled once every message gave up", err)
			}
			d.wantDone(t, batch.ErrGaveUp, "m0", "m1")
			for _, id := range []string{"m0", "m1"} {
				if err, _ := d.result(id); errors.Is(err, context.Canceled) || levee.IsDeferral(err) {
					t.Errorf("%s: got %v, which the dlq counts as no attempt, want a failed attempt", id, err)
				}
			}
		})
	})
	t.Run("while processing, the filling delivery's context ends first", func(t *testing.T) {
		// m1 fills the batch and the func runs on its delivery: its context
		// ending must count as given up just like a waiting one's.
		synctest.Test(t, func(t *testing.T) {
			s := &sink{gate: make(chan struct{})} // never opened: the func waits for its context
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxWait(time.Second))
			d := newDelivery()
			ctx0, cancel0 := context.WithCancel(context.Background())
			ctx1, cancel1 := context.WithCancel(context.Background())
			all := msgs("m", 2, "x")
			all[0].SetContext(ctx0)
			all[1].SetContext(ctx1)
			d.send(b, all...)
			cancel1()
			synctest.Wait()
			fctx := s.call(0).ctx
			if fctx.Err() != nil {
				t.Fatalf("batch context ended while m0 still waits: %v", fctx.Err())
			}
			d.wantPending(t, "m0", "m1")
			cancel0()
			d.wg.Wait()
			if fctx.Err() == nil {
				t.Errorf("batch context still live after every message's context ended")
			}
			d.wantDone(t, context.Canceled, "m0", "m1")
		})
	})
	t.Run("a shared context ends: its messages leave, the others stay", func(t *testing.T) {
		// Deliveries of one subscription share a context. Its end takes
		// every one of them out of the batch at once; messages with another
		// context keep waiting (on as many wake channels as the batch has).
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(64), batch.WithMaxWait(time.Second))
			d := newDelivery()
			sub, cancel := context.WithCancel(context.Background())
			other := context.WithValue(context.Background(), ctxKey{}, "other")
			gone, stay := msgs("gone", 20, "x"), msgs("stay", 20, "x")
			for i := range gone {
				gone[i].SetContext(context.WithValue(sub, ctxKey{}, i)) // one Done channel
				stay[i].SetContext(other)
				d.send(b, gone[i], stay[i])
			}
			cancel()
			synctest.Wait()
			d.wantDone(t, context.Canceled, ids(gone)...)
			d.wantPending(t, ids(stay)...)
			more := msgs("more", 44, "x") // 20 + 44 fill the batch of 64
			d.send(b, more...)
			d.wg.Wait()
			want := append(ids(stay), ids(more)...)
			if got := s.batches(); len(got) != 1 || !slices.Equal(got[0], want) {
				t.Errorf("got batches %v, want one batch %v", got, want)
			}
			d.wantDone(t, nil, want...)
		})
	})
	t.Run("many distinct contexts: each message watches its own", func(t *testing.T) {
		// Beyond the batch's watchers (one per distinct Done channel, up to
		// a few), deliveries watch their own context; both kinds leave.
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(10), batch.WithMaxWait(time.Second))
			d := newDelivery()
			all := msgs("m", 8, "x")
			cancels := make([]context.CancelFunc, len(all))
			for i, m := range all {
				var ctx context.Context
				ctx, cancels[i] = context.WithCancel(context.Background())
				m.SetContext(ctx)
			}
			d.send(b, all...)
			cancels[0]() // the first: a batch watcher covers it
			cancels[7]() // the last: it watches its own context
			synctest.Wait()
			d.wantDone(t, context.Canceled, "m0", "m7")
			d.wantPending(t, "m1", "m2", "m3", "m4", "m5", "m6")
			testkit.Advance(time.Second) // max_wait flushes the rest
			d.wg.Wait()
			if got, want := s.batches(), [][]string{{"m1", "m2", "m3", "m4", "m5", "m6"}}; !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("got %v, want %v", got, want)
			}
			d.wantDone(t, nil, "m1", "m2", "m3", "m4", "m5", "m6")
			for _, c := range cancels {
				c()
			}
		})
	})
	t.Run("while processing, a shared context ends: the func's context is cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{gate: make(chan struct{})} // never opened: the func waits for its context
			b := mustNew(t, s.fn, batch.WithMaxSize(40), batch.WithMaxWait(time.Second))
			d := newDelivery()
			sub, cancel := context.WithCancel(context.Background())
			all := msgs("m", 40, "x")
			for _, m := range all {
				m.SetContext(sub)
			}
			d.send(b, all...)
			fctx := s.call(0).ctx
			if fctx.Err() != nil {
				t.Fatalf("batch context ended early: %v", fctx.Err())
			}
			cancel()
			d.wg.Wait()
			if fctx.Err() == nil {
				t.Errorf("batch context still live after every message's context ended")
			}
			d.wantDone(t, context.Canceled, ids(all)...) // the func's verdict
		})
	})
	t.Run("already cancelled message never joins", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(1))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			m := message.NewMessage("m", nil)
			m.SetContext(ctx)
			if _, err := b.Handler(m); !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if n := len(s.batches()); n != 0 {
				t.Errorf("got %d calls, want 0", n)
			}
		})
	})
}

func TestShutdownMidBatch(t *testing.T) {
	t.Run("close flushes the open batch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{}
			b := mustNew(t, s.fn, batch.WithMaxSize(10), batch.WithMaxWait(time.Hour))
			d := newDelivery()
			all := msgs("m", 3, "x")
			d.send(b, all...)
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			d.wg.Wait()
			d.wantDone(t, nil, ids(all)...)
			if got := s.batches(); len(got) != 1 || len(got[0]) != 3 {
				t.Errorf("got %v, want one batch of 3", got)
			}
			if _, err := b.Handler(message.NewMessage("late", nil)); !errors.Is(err, batch.ErrClosed) {
				t.Errorf("after Close: got %v, want ErrClosed", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	})
	t.Run("close runs queued batches", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			gate := make(chan struct{})
			s := &sink{gate: gate}
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxInFlight(1), batch.WithMaxWait(time.Hour))
			d := newDelivery()
			all := msgs("m", 5, "x")
			d.send(b, all...)
			closed := make(chan error)
			go func() { closed <- b.Close() }()
			synctest.Wait()
			d.wantPending(t, ids(all)...)
			close(gate)
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			d.wg.Wait()
			d.wantDone(t, nil, ids(all)...)
			if got := len(s.batches()); got != 3 {
				t.Errorf("got %d batches, want 3", got)
			}
		})
	})
	t.Run("shutdown deadline fails queued batches and cancels running ones", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &sink{gate: make(chan struct{})} // never opened: the func waits for its context
			b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxInFlight(1), batch.WithMaxWait(time.Hour))
			d := newDelivery()
			all := msgs("m", 5, "x")
			d.send(b, all...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown: got %v, want DeadlineExceeded", err)
			}
			d.wg.Wait()
			// The running batch saw its context cancelled; its func returned
			// that error, so its messages are Nacked.
			d.wantDone(t, context.Canceled, "m0", "m1")
			d.wantDone(t, batch.ErrClosed, "m2", "m3", "m4")
			if got := len(s.batches()); got != 1 {
				t.Errorf("got %d batches started, want 1", got)
			}
		})
	})
}

func TestMaxHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		s := &sink{gate: gate}
		b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithMaxInFlight(1),
			batch.WithMaxWait(10*time.Millisecond), batch.WithMaxHold(100*time.Millisecond))
		d := newDelivery()
		d.send(b, msgs("r", 2, "x")...) // runs, blocked on gate
		d.send(b, msgs("q", 1, "x")...) // lingers 10ms, then queues
		testkit.Advance(99 * time.Millisecond)
		d.wantPending(t, "q0")
		testkit.Advance(time.Millisecond)
		err, ok := d.result("q0")
		var he *batch.HoldError
		if !ok || !errors.As(err, &he) || !errors.Is(err, batch.ErrMaxHold) {
			t.Fatalf("q0: got %v (returned %v), want a *HoldError", err, ok)
		}
		if he.RetryAfter() != 10*time.Millisecond || he.Held != 100*time.Millisecond {
			t.Errorf("got RetryAfter %s, Held %s; want 10ms, 100ms", he.RetryAfter(), he.Held)
		}
		close(gate)
		d.wg.Wait()
		d.wantDone(t, nil, "r0", "r1")
		if got := len(s.batches()); got != 1 {
			t.Errorf("got %d batches, want 1 (the held batch never runs)", got)
		}
	})
}

func TestFuncContextCarriesNoMessageDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		b := mustNew(t, s.fn, batch.WithMaxSize(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m := message.NewMessage("m", nil)
		m.SetContext(ctx)
		if _, err := b.Handler(m); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.call(0).ctx.Deadline(); ok {
			t.Errorf("batch func context has a message's deadline; want the batch's own context")
		}
	})
}
