package dlq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/testkit"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// memAttempts is an in-process dlq.AttemptStore for the unit tests (the
// Redis and PostgreSQL ones run dlqtest.RunAttempts against their servers).
type memAttempts struct {
	mu    sync.Mutex
	calls int
	reads int
	// readFail makes Attempts fail (fail makes both fail)
	readFail error
	fail     error
	recs     map[[2]string]memAttempt
}

type memAttempt struct {
	n            int
	first, until time.Time
}

func (m *memAttempts) Fail(_ context.Context, handler, uuid string, now time.Time, ttl time.Duration) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		return 0, time.Time{}, m.fail
	}
	if m.recs == nil {
		m.recs = map[[2]string]memAttempt{}
	}
	k := [2]string{handler, uuid}
	r := m.recs[k]
	if !now.Before(r.until) {
		r = memAttempt{first: now}
	}
	r.n++
	r.until = now.Add(ttl)
	m.recs[k] = r
	return r.n, r.first, nil
}

// Attempts implements dlq.AttemptReader.
func (m *memAttempts) Attempts(_ context.Context, handler, uuid string, now time.Time) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if err := errors.Join(m.fail, m.readFail); err != nil {
		return 0, time.Time{}, err
	}
	r, ok := m.recs[[2]string{handler, uuid}]
	if !ok || !now.Before(r.until) {
		return 0, time.Time{}, nil
	}
	return r.n, r.first, nil
}

func TestMemAttemptsConforms(t *testing.T) {
	dlqtest.RunAttempts(t, func(*testing.T) dlq.AttemptStore { return &memAttempts{} })
}

// Without a shared store, two instances that take turns with a poison
// message each count their own attempts: it runs 2×max-1 times. With one,
// exactly max times.
func TestAttemptStoreSharesTheCount(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		if calls, attempts := dlqtest.TwoRetriers(t, nil, 5); calls != 9 || attempts != "5" {
			t.Errorf("per-process counts: got %d calls (attempts %s), want 9 (5)", calls, attempts)
		}
		if calls, attempts := dlqtest.TwoRetriers(t, &memAttempts{}, 5); calls != 5 || attempts != "5" {
			t.Errorf("shared count: got %d calls (attempts %s), want 5", calls, attempts)
		}
	})
}

// A store that fails is logged and the count falls back to the process's
// own: the message is still retried and dead-lettered, never dropped.
func TestAttemptStoreFailureFallsBack(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		var logged []string
		store := &memAttempts{fail: errors.New("redis down")}
		pub := newRecPublisher()
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(3), dlq.WithAttemptStore(store),
			dlq.WithLogger(&recLogger{errs: &logged}), dlq.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		if _, err := r.Middleware(failingHandler(&calls, -1, errBoom))(message.NewMessage("m", nil)); err != nil {
			t.Fatalf("got %v, want dead-lettered", err)
		}
		if calls != 3 || store.calls != 3 || len(pub.published(testDLQ)) != 1 {
			t.Errorf("got %d calls, %d store calls, %d dead letters; want 3, 3, 1", calls, store.calls, len(pub.published(testDLQ)))
		}
		if len(logged) != 3 || !strings.Contains(logged[0], "attempt store failed") || !strings.Contains(logged[0], "redis down") {
			t.Errorf("logged %q", logged)
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var errs int64 = -1
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "levee.dlq.attempt_store_errors" {
					errs = 0
					for _, dp := range sum.DataPoints {
						errs += dp.Value
					}
				}
			}
		}
		if errs != 3 {
			t.Errorf("levee.dlq.attempt_store_errors: got %d, want 3", errs)
		}
	})
}

// The success path never calls the store; a failure followed by success
// calls it once, with the handler name and UUID.
func TestAttemptStoreOnlyOnFailure(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		store := &memAttempts{}
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithAttemptStore(store), dlq.WithAttemptTTL(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		h := r.Middleware(failingHandler(&calls, 1, errBoom)) // fails once, then succeeds
		for range 10 {
			if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })(message.NewMessage("ok", nil)); err != nil {
				t.Fatal(err)
			}
		}
		if store.calls != 0 {
			t.Fatalf("success path called the store %d times", store.calls)
		}
		if _, err := h(message.NewMessage("flaky", nil)); err != nil {
			t.Fatal(err)
		}
		if store.calls != 1 || store.recs[[2]string{"", "flaky"}].n != 1 {
			t.Errorf("store calls %d, records %v; want one failure of flaky", store.calls, store.recs)
		}
	})
}

func TestAttemptTTLValidated(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := dlq.New(newRecPublisher(), dlq.WithAttemptTTL(d)); !errors.Is(err, dlq.ErrInvalidConfig) {
			t.Errorf("ttl %s: got %v want ErrInvalidConfig", d, err)
		}
	}
}
