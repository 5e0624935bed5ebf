package ratelimit

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestNewRejectsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		field string
	}{
		{"NaN rate", []Option{WithRate(math.NaN())}, "rate"},
		{"negative rate", []Option{WithRate(-1)}, "rate"},
		{"+Inf rate", []Option{WithRate(math.Inf(1))}, "rate"},
		{"-Inf rate", []Option{WithRate(math.Inf(-1))}, "rate"},
		{"burst 0 with a positive rate", []Option{WithRate(10), WithBurst(0)}, "burst"},
		{"negative burst", []Option{WithBurst(-1)}, "burst"},
		{"negative max_wait", []Option{WithMaxWait(-time.Second)}, "max_wait"},
		{"negative max_hold", []Option{WithMaxHold(-time.Second)}, "max_hold"},
		{"negative catch_up", []Option{WithCatchUp(-time.Second)}, "catch_up"},
		{"unknown mode", []Option{WithMode(Mode(7))}, "mode"},
		{"per-key without a key", []Option{WithPerKey(1, 1)}, "key"},
		{"key without per-key limit", []Option{WithKeyMetadata("k")}, "per_key"},
		{"two key sources", []Option{WithKeyMetadata("k"), WithKeyFunc(func(*message.Message) string { return "" }), WithPerKey(1, 1)}, "key"},
		{"per-key NaN", []Option{WithKeyMetadata("k"), WithPerKey(math.NaN(), 1)}, "per_key.rate"},
		{"per-key burst 0", []Option{WithKeyMetadata("k"), WithPerKey(5, 0)}, "per_key.burst"},
		{"override negative", []Option{WithKeyMetadata("k"), WithPerKey(5, 1), WithKeyOverride("vip", -5, 1)}, "per_key.overrides.vip.rate"},
		{"max keys 0", []Option{WithKeyMetadata("k"), WithPerKey(5, 1), WithMaxKeys(0)}, "per_key.max_keys"},
		{"negative idle", []Option{WithKeyMetadata("k"), WithPerKey(5, 1), WithKeyIdle(-1)}, "per_key.idle"},
		{"adaptive min 0", []Option{WithAdaptive(Adaptive{Min: 0, Max: 10})}, "adaptive.min"},
		{"adaptive max < min", []Option{WithAdaptive(Adaptive{Min: 10, Max: 5})}, "adaptive.max"},
		{"adaptive max Inf", []Option{WithAdaptive(Adaptive{Min: 10, Max: math.Inf(1)})}, "adaptive.max"},
		{"adaptive decrease 1", []Option{WithAdaptive(Adaptive{Min: 1, Max: 5, Decrease: 1})}, "adaptive.decrease"},
		{"adaptive error rate 2", []Option{WithAdaptive(Adaptive{Min: 1, Max: 5, MaxErrorRate: 2})}, "adaptive.max_error_rate"},
		{"rate outside adaptive bounds", []Option{WithRate(100), WithAdaptive(Adaptive{Min: 1, Max: 5})}, "rate"},
		{"adaptive tolerance 1", []Option{WithAdaptive(Adaptive{Min: 1, Max: 5, LatencyTolerance: 1})}, "adaptive.latency_tolerance"},
		{"adaptive target and ignore", []Option{WithAdaptive(Adaptive{Min: 1, Max: 5, TargetLatency: 1, IgnoreLatency: true})}, "adaptive.target_latency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.opts...)
			if err == nil {
				_ = l.Close()
				t.Fatal("got no error")
			}
			var ie *invalidError
			if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ie) || ie.field != tc.field {
				t.Fatalf("got %v, want ErrInvalidConfig about %s", err, tc.field)
			}
		})
	}
}

func TestZeroRateAdmitsNothing(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(0), WithBurst(10))
		if l.Allow() {
			t.Fatal("Allow admitted with rate 0")
		}
		var le *LimitedError
		if err := l.Reserve(); !errors.As(err, &le) || le.RetryAfter() != ZeroRateRetryAfter {
			t.Fatalf("Reserve got %v, want RetryAfter %v", err, ZeroRateRetryAfter)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Hour, cancel)
		if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait got %v", err)
		}
		lw := mustNew(t, WithRate(0), WithMaxWait(time.Second))
		if err := lw.Wait(context.Background()); !errors.As(err, &le) || le.RetryAfter() != ZeroRateRetryAfter {
			t.Fatalf("Wait with max_wait got %v", err)
		}
		// A burst of 0 is allowed with rate 0 (nothing is admitted anyway).
		mustNew(t, WithRate(0), WithBurst(0))
	})
}

func TestExtremeRates(t *testing.T) {
	t.Run("huge rates admit without waiting", func(t *testing.T) {
		for _, r := range []float64{1e9, 1e12, 1e300, math.MaxFloat64} {
			testkit.Synctest(t, func(t *testing.T) {
				l := mustNew(t, WithRate(r), WithBurst(1))
				start := time.Now()
				for i := 0; i < 1000; i++ {
					if err := l.Wait(context.Background()); err != nil {
						t.Fatalf("rate %g: %v", r, err)
					}
				}
				// 1000 permits at >= 1e9/s take at most 1us of schedule.
				if d := time.Since(start); d > time.Microsecond {
					t.Fatalf("rate %g: 1000 permits took %v", r, d)
				}
			})
		}
	})
	t.Run("tiny rates admit the first and then wait", func(t *testing.T) {
		for _, r := range []float64{1e-9, 1e-300, math.SmallestNonzeroFloat64} {
			testkit.Synctest(t, func(t *testing.T) {
				l := mustNew(t, WithRate(r), WithBurst(3))
				for i := 0; i < 3; i++ {
					if !l.Allow() {
						t.Fatalf("rate %g: burst permit %d refused", r, i)
					}
				}
				var le *LimitedError
				if err := l.Reserve(); !errors.As(err, &le) || le.RetryAfter() <= 0 {
					t.Fatalf("rate %g: got %v", r, err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				if err := l.Wait(ctx); !errors.Is(err, ErrLimited) {
					t.Fatalf("rate %g: Wait got %v", r, err)
				}
			})
		}
	})
	t.Run("huge bursts", func(t *testing.T) {
		l := mustNew(t, WithRate(1), WithBurst(math.MaxInt))
		for i := 0; i < 1000; i++ {
			if !l.Allow() {
				t.Fatal("refused within burst")
			}
		}
	})
	t.Run("setters clamp invalid values", func(t *testing.T) {
		l := mustNew(t, WithRate(5))
		l.SetRate(math.NaN())
		if got := l.Rate(); got != 0 {
			t.Fatalf("SetRate(NaN): Rate %v, want 0", got)
		}
		l.SetRate(-3)
		if got := l.Rate(); got != 0 {
			t.Fatalf("SetRate(-3): Rate %v, want 0", got)
		}
		l.SetRate(math.Inf(1))
		if got := l.Rate(); !math.IsInf(got, 1) {
			t.Fatalf("SetRate(+Inf): Rate %v, want +Inf", got)
		}
		l.SetBurst(-4)
		if got := l.Burst(); got != 1 {
			t.Fatalf("SetBurst(-4): Burst %v, want 1", got)
		}
	})
	t.Run("unlimited by default", func(t *testing.T) {
		l := mustNew(t)
		if !math.IsInf(l.Rate(), 1) {
			t.Fatalf("Rate %v", l.Rate())
		}
		for i := 0; i < 100; i++ {
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRebase runs past the epoch rebase (2^40 ns) and checks the spacing
// and owed permits survive it.
func TestRebase(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(1000))
		time.Sleep(1<<40 - 5*time.Millisecond) // gcra rebases its epoch at 2^40 ns
		start := time.Now()
		for i := 0; i < 20; i++ { // crosses the rebase at ~5ms
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 19*time.Millisecond {
			t.Fatalf("20 permits across the rebase took %v, want 19ms", got)
		}
	})
}

// TestPauseIsNotCaughtUp: time a consumer spends away (a pause, its
// handler) is not credited: after it only the burst is available, as in a
// plain token bucket; only measured wake-up lateness is caught up
// (TestLateWakeupCatchUp).
func TestPauseIsNotCaughtUp(t *testing.T) {
	for _, pause := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		t.Run(pause.String(), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				l := mustNew(t, WithRate(1000), WithBurst(1), WithCatchUp(10*time.Millisecond))
				if !l.Allow() {
					t.Fatal("first refused")
				}
				time.Sleep(pause)
				n := 0
				for l.Allow() {
					n++
				}
				if n != 1 {
					t.Fatalf("after a %v pause %d permits at once, want 1", pause, n)
				}
			})
		})
	}
}
