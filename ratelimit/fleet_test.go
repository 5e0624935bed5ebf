package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

func countAdmitted(t *testing.T, l *ratelimit.Limiter, d time.Duration) int {
	t.Helper()
	n := 0
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) { n++; return nil, nil })
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		msg := message.NewMessage("1", nil)
		msg.SetContext(ctx)
		_, _ = h(msg)
	}
	return n
}

// The fleet limit and the local one compose: the smaller one holds.
func TestFleetComposesWithLocalLimit(t *testing.T) {
	for _, tt := range []struct {
		name         string
		fleet, local float64
		want         int // in 2s, +-5%
	}{
		{"fleet lower", 100, 1000, 200},
		{"local lower", 1000, 100, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				l, err := ratelimit.New(ratelimit.WithRate(tt.local), ratelimit.WithBurst(1),
					ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: tt.fleet, Burst: 1}))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				got := countAdmitted(t, l, 2*time.Second)
				if lo, hi := tt.want*95/100, tt.want*105/100+int(tt.fleet/5); got < lo || got > hi {
					t.Errorf("admitted %d in 2s, want within [%d, %d]", got, lo, hi)
				}
			})
		})
	}
}

// TestFleetStoreDownFailClosed: while the store is down a fail_closed
// fleet limit admits nothing. In reject mode a message is deferred at
// once, its RetryAfter one lease period. In wait mode it waits for the
// store as for a token: admitted once the store leases again, deferred
// at its max wait. It was deferred at once in wait mode too, and a
// transport without native delay (RabbitMQ, Redis, Kafka, GoChannel)
// then redelivers at once, for as long as the store is down.
func TestFleetStoreDownFailClosed(t *testing.T) {
	ok := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	newLimiter := func(t *testing.T, s *fleet.MemStore, opts ...ratelimit.Option) *ratelimit.Limiter {
		l, err := ratelimit.New(append(opts, ratelimit.WithFleet(ratelimit.Fleet{Store: s, Key: "k", Rate: 100,
			OnStoreError: ratelimit.StoreFailClosed}))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	deferred := func(t *testing.T, err error) time.Duration {
		t.Helper()
		d, ok := levee.AsDeferral(err)
		if !errors.Is(err, ratelimit.ErrLimited) || !ok {
			t.Fatalf("err %v, want a deferral wrapping ErrLimited", err)
		}
		return d.RetryAfter()
	}
	t.Run("reject", func(t *testing.T) {
		testkit.Synctest(t, func(t *testing.T) {
			s := fleet.NewMemStore()
			s.SetErr(errors.New("down"))
			l := newLimiter(t, s, ratelimit.WithMode(ratelimit.ModeReject))
			h := l.Middleware(ok)
			_, _ = h(message.NewMessage("0", nil)) // the first store call fails: degraded
			time.Sleep(time.Second)
			start := time.Now()
			_, err := h(message.NewMessage("1", nil))
			if ra := deferred(t, err); ra != fleet.DefaultPeriod {
				t.Errorf("RetryAfter %s, want one lease period", ra)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("deferred after %s, want at once", d)
			}
			if !l.FleetDegraded() {
				t.Error("not degraded")
			}
		})
	})
	t.Run("wait", func(t *testing.T) {
		testkit.Synctest(t, func(t *testing.T) {
			s := fleet.NewMemStore()
			s.SetErr(errors.New("down"))
			l := newLimiter(t, s, ratelimit.WithMaxWait(2*time.Second))
			h := l.Middleware(ok)
			start := time.Now()
			_, err := h(message.NewMessage("1", nil))
			deferred(t, err)
			if d := time.Since(start); d != 2*time.Second {
				t.Errorf("deferred after %s, want at its max wait, 2s", d)
			}
			if !l.FleetDegraded() {
				t.Error("not degraded")
			}
			go func() {
				time.Sleep(500 * time.Millisecond)
				s.SetErr(nil)
			}()
			start = time.Now()
			if _, err := h(message.NewMessage("2", nil)); err != nil {
				t.Errorf("store back within the max wait: %v, want admitted", err)
			}
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("admitted after %s, before the store answered", d)
			}
		})
	})
}

func TestFleetPerKey(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: 1000,
			PerKeyRate: 10, PerKeyBurst: 1, PerKeyMetadata: "tenant", MaxKeys: 2}))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		n := map[string]int{}
		h := l.Middleware(func(m *message.Message) ([]*message.Message, error) { n[m.Metadata.Get("tenant")]++; return nil, nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for i := 0; ctx.Err() == nil; i++ {
			msg := message.NewMessage("1", nil)
			msg.Metadata.Set("tenant", []string{"a", "b"}[i%2])
			msg.SetContext(ctx)
			_, _ = h(msg)
		}
		for _, k := range []string{"a", "b"} {
			if n[k] < 9 || n[k] > 12 {
				t.Errorf("tenant %s: %d in 1s at 10/s, want 9 to 12", k, n[k])
			}
		}
	})
}

func TestFleetInvalid(t *testing.T) {
	for _, f := range []ratelimit.Fleet{
		{Key: "k", Rate: 1},
		{Store: fleet.NewMemStore(), Rate: 1},
		{Store: fleet.NewMemStore(), Key: "k", Rate: -1},
		{Store: fleet.NewMemStore(), Key: "k", Rate: 1, PerKeyRate: 1},
	} {
		if _, err := ratelimit.New(ratelimit.WithFleet(f)); !errors.Is(err, ratelimit.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", f, err)
		}
	}
	if _, err := ratelimit.ParseOnStoreError("sometimes"); !errors.Is(err, ratelimit.ErrInvalidConfig) {
		t.Errorf("ParseOnStoreError: %v", err)
	}
}
