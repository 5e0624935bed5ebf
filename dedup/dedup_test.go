package dedup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
)

// counter is a handler that counts its runs and returns the next error of
// errs (nil once they are used up).
type counter struct {
	mu   sync.Mutex
	runs int
	errs []error
}

func (c *counter) handle(*message.Message) ([]*message.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs++
	if len(c.errs) > 0 {
		err := c.errs[0]
		c.errs = c.errs[1:]
		return nil, err
	}
	return nil, nil
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs
}

func newDedup(t *testing.T, opts ...dedup.Option) *dedup.Dedup {
	t.Helper()
	d, err := dedup.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func msg(uuid, payload string) *message.Message { return message.NewMessage(uuid, []byte(payload)) }

func TestDuplicateIsAckedWithoutRunning(t *testing.T) {
	var c counter
	h := newDedup(t).Middleware(c.handle)
	for i := range 3 {
		if _, err := h(msg("m1", "{}")); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if got := c.count(); got != 1 {
		t.Errorf("handler runs: got %d, want 1", got)
	}
}

func TestFailureReleasesForTheRetry(t *testing.T) {
	c := counter{errs: []error{errors.New("downstream down")}}
	h := newDedup(t).Middleware(c.handle)
	if _, err := h(msg("m1", "")); err == nil {
		t.Fatal("first delivery: got nil, want the handler's error")
	}
	for range 2 {
		if _, err := h(msg("m1", "")); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
	}
	if got := c.count(); got != 2 {
		t.Errorf("handler runs: got %d, want 2 (the failure and one success)", got)
	}
}

// TestHandlerNackRunsTheRedelivery: a handler that Nacks its message
// itself and returns nil has not succeeded (Watermill's router then Acks,
// which does nothing, and the broker redelivers it), so the redelivery
// runs instead of being acked as a duplicate.
func TestHandlerNackRunsTheRedelivery(t *testing.T) {
	runs := 0
	h := newDedup(t).Middleware(func(m *message.Message) ([]*message.Message, error) {
		runs++
		if runs == 1 {
			m.Nack()
		}
		return nil, nil
	})
	for i := range 3 {
		if _, err := h(msg("m1", "")); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if runs != 2 {
		t.Errorf("handler runs: got %d, want 2 (the Nacked delivery and its redelivery, then a duplicate)", runs)
	}
}

// TestHandlerNackOverARouter: the same through Watermill's router over
// GoChannel, which redelivers a Nacked message: the handler's own Nack is
// followed by a run of the redelivery, not by a duplicate's ack.
func TestHandlerNackOverARouter(t *testing.T) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan int, 4)
	var runs atomic.Int32
	router.AddHandler("h", "t", pubsub, "unused", pubsub, newDedup(t).Middleware(func(m *message.Message) ([]*message.Message, error) {
		n := runs.Add(1)
		if n == 1 {
			m.Nack()
		}
		ran <- int(n)
		return nil, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-router.Running()
	if err := pubsub.Publish("t", msg("m1", "")); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		select {
		case got := <-ran:
			if got != want {
				t.Fatalf("run %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d of the message never came: its redelivery was acked as a duplicate", want)
		}
	}
}

// TestConcurrentDuplicateIsDeferred: while one delivery runs, a duplicate
// is deferred (never run in parallel), with RetryAfter bounded by the busy
// retry; once the first is done, the duplicate is acked without running.
func TestConcurrentDuplicateIsDeferred(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var runs atomic.Int32
		h := newDedup(t, dedup.WithBusyRetry(time.Second)).Middleware(func(*message.Message) ([]*message.Message, error) {
			runs.Add(1)
			<-release
			return nil, nil
		})
		done := make(chan error)
		go func() { _, err := h(msg("m1", "")); done <- err }()
		synctest.Wait()
		_, err := h(msg("m1", ""))
		d, ok := levee.AsDeferral(err)
		if !ok || !errors.Is(err, dedup.ErrInProgress) {
			t.Fatalf("duplicate in progress: got %v, want a deferral wrapping ErrInProgress", err)
		}
		if d.RetryAfter() != time.Second {
			t.Errorf("retry after: got %v, want 1s (the busy retry, under the 30s lease)", d.RetryAfter())
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := h(msg("m1", "")); err != nil {
			t.Fatalf("duplicate after done: %v", err)
		}
		if got := runs.Load(); got != 1 {
			t.Errorf("handler runs: got %d, want 1", got)
		}
	})
}

// TestCrashRecoveryIsBoundedByTheLease: a claim left by a delivery that
// died keeps duplicates out until the lease ends, then one runs, and the
// takeover is counted as a lease expiry.
func TestCrashRecoveryIsBoundedByTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, err := dedup.NewMemStore(10)
		if err != nil {
			t.Fatal(err)
		}
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		var c counter
		h := newDedup(t, dedup.WithStore(store), dedup.WithLease(10*time.Second),
			dedup.WithMeterProvider(mp)).Middleware(c.handle)
		if _, err := store.Claim(context.Background(), "m1", 7, 10*time.Second); err != nil { // the crashed delivery
			t.Fatal(err)
		}
		time.Sleep(9 * time.Second)
		if _, err := h(msg("m1", "")); !errors.Is(err, dedup.ErrInProgress) {
			t.Fatalf("within the lease: got %v, want ErrInProgress", err)
		}
		time.Sleep(2 * time.Second)
		if _, err := h(msg("m1", "")); err != nil {
			t.Fatalf("after the lease: %v", err)
		}
		if got := c.count(); got != 1 {
			t.Errorf("handler runs: got %d, want 1", got)
		}
		got := sums(t, reader)
		for name, want := range map[string]int64{
			"levee.dedup.lease.expiries": 1, "levee.dedup.claims.waited": 1, "levee.dedup.duplicates": 0,
		} {
			if got[name] != want {
				t.Errorf("%s: got %d, want %d", name, got[name], want)
			}
		}
	})
}

func sums(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range s.DataPoints {
					out[m.Name] += p.Value
				}
			}
		}
	}
	return out
}

func TestDuplicatesAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var c counter
	d := newDedup(t, dedup.WithMeterProvider(mp))
	h := d.Middleware(c.handle)
	for range 3 {
		if _, err := h(msg("m1", "")); err != nil {
			t.Fatal(err)
		}
	}
	if got := sums(t, reader)["levee.dedup.duplicates"]; got != 2 {
		t.Errorf("duplicates: got %d, want 2", got)
	}
	if got := d.Stats(); got != (dedup.Stats{Duplicates: 2}) {
		t.Errorf("stats: got %+v, want 2 duplicates", got)
	}
}

func TestIdentity(t *testing.T) {
	byMeta, err := dedup.MetadataKey("order_id")
	if err != nil {
		t.Fatal(err)
	}
	byPtr, err := dedup.JSONPointer("/order/id")
	if err != nil {
		t.Fatal(err)
	}
	withMeta := func(uuid, payload, k, v string) *message.Message {
		m := msg(uuid, payload)
		m.Metadata.Set(k, v)
		return m
	}
	for _, tt := range []struct {
		name    string
		fn      dedup.KeyFunc
		msgs    []*message.Message
		runs    int
		wantErr error
	}{
		{"uuid: different uuids run", dedup.UUIDKey, []*message.Message{msg("a", ""), msg("b", "")}, 2, nil},
		{"metadata: same key, new uuids", byMeta, []*message.Message{
			withMeta("a", "", "order_id", "o1"), withMeta("b", "", "order_id", "o1")}, 1, nil},
		{"metadata missing", byMeta, []*message.Message{msg("a", "")}, 0, dedup.ErrNoKey},
		{"metadata empty", byMeta, []*message.Message{withMeta("a", "", "order_id", "")}, 0, dedup.ErrNoKey},
		{"uuid: none", dedup.UUIDKey, []*message.Message{msg("", "")}, 0, dedup.ErrNoKey},
		{"json pointer: same id", byPtr, []*message.Message{
			msg("a", `{"order":{"id":"o1"}}`), msg("b", `{"order":{"id":"o1"},"x":1}`)}, 1, nil},
		{"json pointer: number", byPtr, []*message.Message{msg("a", `{"order":{"id":12}}`), msg("b", `{"order":{"id":12}}`)}, 1, nil},
		{"json pointer: not json", byPtr, []*message.Message{msg("a", `nope`)}, 0, dedup.ErrNoKey},
		{"json pointer: object value", byPtr, []*message.Message{msg("a", `{"order":{"id":{}}}`)}, 0, dedup.ErrNoKey},
		{"json pointer: missing", byPtr, []*message.Message{msg("a", `{"order":[]}`)}, 0, dedup.ErrNoKey},
		{"KeyDedupID wins", byMeta, []*message.Message{
			withMeta("a", "", levee.KeyDedupID, "r1"), withMeta("b", "", levee.KeyDedupID, "r1")}, 1, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			h := newDedup(t, dedup.WithKeyFunc(tt.fn)).Middleware(c.handle)
			for _, m := range tt.msgs {
				_, err := h(m)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				if err != nil && levee.ClassOf(err) != levee.ClassValidation {
					t.Errorf("class: got %s, want validation", levee.ClassOf(err))
				}
			}
			if got := c.count(); got != tt.runs {
				t.Errorf("handler runs: got %d, want %d", got, tt.runs)
			}
		})
	}
}

// TestIdentityIsWrittenForDeadLetters: a message that fails carries its
// identity (when it is not the UUID) for its dead letter; one that
// succeeds is left as it came (TestForwardedMetadataCarriesNoIdentity).
func TestIdentityIsWrittenForDeadLetters(t *testing.T) {
	byMeta, _ := dedup.MetadataKey("order_id")
	c := counter{errs: []error{errors.New("down")}}
	h := newDedup(t, dedup.WithKeyFunc(byMeta), dedup.WithNamespace("ns")).Middleware(c.handle)
	m := msg("a", "")
	m.Metadata.Set("order_id", "o1")
	if _, err := h(m); err == nil {
		t.Fatal("got nil, want the handler's error")
	}
	if got := m.Metadata.Get(levee.KeyDedupID); got != "o1" {
		t.Errorf("after a failure %s: got %q, want o1", levee.KeyDedupID, got)
	}
	ok := msg("b", "")
	ok.Metadata.Set("order_id", "o2")
	if _, err := h(ok); err != nil {
		t.Fatal(err)
	}
	if got, set := ok.Metadata[levee.KeyDedupID]; set {
		t.Errorf("after a success %s: got %q, want none", levee.KeyDedupID, got)
	}
	// The UUID is not copied (a dead letter records it), and a message
	// without metadata is no panic.
	fail := func(*message.Message) ([]*message.Message, error) { return nil, errors.New("down") }
	h = newDedup(t).Middleware(fail)
	bare := &message.Message{UUID: "u1"}
	if _, err := h(bare); err == nil || bare.Metadata != nil {
		t.Errorf("uuid identity: got err %v, metadata %v; want the error, nil", err, bare.Metadata)
	}
	h = newDedup(t, dedup.WithKeyFunc(func(*message.Message) (string, error) { return "k", nil })).Middleware(fail)
	bare = &message.Message{UUID: "u2"}
	if _, err := h(bare); err == nil || bare.Metadata.Get(levee.KeyDedupID) != "k" {
		t.Errorf("nil metadata: got err %v, metadata %v", err, bare.Metadata)
	}
}

func TestBadOptions(t *testing.T) {
	badPtr := func() dedup.Option {
		_, err := dedup.JSONPointer("id")
		if !errors.Is(err, dedup.ErrInvalidConfig) {
			t.Errorf("pointer without /: got %v, want ErrInvalidConfig", err)
		}
		return dedup.WithLease(-1)
	}
	for name, opt := range map[string]dedup.Option{
		"nil store": dedup.WithStore(nil), "nil key": dedup.WithKeyFunc(nil), "zero lease": dedup.WithLease(0),
		"zero window": dedup.WithWindow(0), "zero timeout": dedup.WithStoreTimeout(0), "zero busy": dedup.WithBusyRetry(0),
		"negative lease": badPtr(),
	} {
		if _, err := dedup.New(opt); !errors.Is(err, dedup.ErrInvalidConfig) || !errors.Is(err, levee.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := dedup.NewMemStore(0); !errors.Is(err, dedup.ErrInvalidConfig) {
		t.Errorf("mem store 0: got %v, want ErrInvalidConfig", err)
	}
	if _, err := dedup.MetadataKey(" "); !errors.Is(err, dedup.ErrInvalidConfig) {
		t.Errorf("blank metadata key: got %v, want ErrInvalidConfig", err)
	}
}

// failingStore fails every call.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Claim(context.Context, string, uint64, time.Duration) (dedup.Claim, error) {
	return dedup.Claim{}, errDown
}
func (failingStore) Done(context.Context, string, uint64, time.Duration) error { return errDown }
func (failingStore) Release(context.Context, string, uint64) error             { return errDown }

func TestStoreOutageDefers(t *testing.T) {
	var c counter
	_, err := newDedup(t, dedup.WithStore(failingStore{})).Middleware(c.handle)(msg("a", ""))
	if !levee.IsDeferral(err) || !errors.Is(err, dedup.ErrStore) || !errors.Is(err, errDown) {
		t.Errorf("got %v, want a deferral wrapping ErrStore and the cause", err)
	}
	if c.count() != 0 {
		t.Error("the handler ran without a claim")
	}
}

// refusingStore refuses every key the way a database refuses data it
// cannot keep: its Claim error declares the class validation.
type refusingStore struct{ failingStore }

var errRefused = errors.New("invalid byte sequence")

type classedErr struct{ error }

func (e classedErr) Unwrap() error      { return e.error }
func (e classedErr) ErrorClass() string { return string(levee.ClassValidation) }

func (refusingStore) Claim(context.Context, string, uint64, time.Duration) (dedup.Claim, error) {
	return dedup.Claim{}, classedErr{errRefused}
}

// TestStoreRefusingTheKey: a Claim error of class validation is no outage:
// the message is not deferred (a deferral is never dead-lettered, and the
// same claim fails on every redelivery) but fails with ErrKeyRefused and
// the store's error, class validation, which the dlq dead-letters at once
// without running the handler. The store error is counted.
func TestStoreRefusingTheKey(t *testing.T) {
	var c counter
	d := newDedup(t, dedup.WithStore(refusingStore{}))
	_, err := d.Middleware(c.handle)(msg("a\x00", ""))
	if levee.IsDeferral(err) || !errors.Is(err, dedup.ErrKeyRefused) || !errors.Is(err, errRefused) || errors.Is(err, dedup.ErrStore) {
		t.Fatalf("got %v, want an error wrapping ErrKeyRefused and the cause, no deferral", err)
	}
	if got := levee.ClassOf(err); got != levee.ClassValidation {
		t.Errorf("class: got %q, want validation", got)
	}
	if got := d.Stats().StoreErrors; got != 1 {
		t.Errorf("store errors: got %d, want 1", got)
	}

	var letters capture
	r, err := dlq.New(&letters, dlq.WithTopic("t.dlq"), dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Middleware(d.Middleware(c.handle))(msg("a\x00", "")); err != nil {
		t.Fatalf("got %v, want nil (dead-lettered, then acked)", err)
	}
	if len(letters.msgs) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(letters.msgs))
	}
	l := letters.msgs[0]
	if got := l.Metadata.Get(dlq.KeyErrorClass); got != string(levee.ClassValidation) {
		t.Errorf("dead letter class: got %q, want validation", got)
	}
	if got := l.Metadata.Get(dlq.KeyError); !strings.Contains(got, errRefused.Error()) {
		t.Errorf("dead letter reason: got %q, want the store's error", got)
	}
	if c.count() != 0 {
		t.Error("the handler ran without a claim")
	}
}

// capture is a publisher that keeps what it is given (one goroutine).
type capture struct{ msgs []*message.Message }

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}
func (c *capture) Close() error { return nil }

// TestInsideDLQ: in the canonical order the dedup slot sits inside the dlq:
// a transient failure is retried in process (the claim released between
// attempts), the success is marked, a later duplicate is acked without an
// attempt, and a dead-lettered message is not marked, so its replay runs.
func TestInsideDLQ(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, nil)
		defer pubsub.Close()
		r, err := dlq.New(pubsub, dlq.WithTopic("t.dlq"), dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 2}))
		if err != nil {
			t.Fatal(err)
		}
		d := newDedup(t)
		c := counter{errs: []error{errors.New("flaky")}}
		h := r.Middleware(d.Middleware(c.handle))
		for range 2 {
			if _, err := h(msg("ok", "")); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.count(); got != 2 {
			t.Errorf("runs of a flaky message delivered twice: got %d, want 2 (one retry, then a duplicate)", got)
		}
		p := counter{errs: []error{dlq.Permanent(errors.New("bad")), nil}}
		hp := r.Middleware(d.Middleware(p.handle))
		if _, err := hp(msg("poison", "")); err != nil {
			t.Fatalf("dead-lettered message: got %v, want nil (acked after the DLQ publish)", err)
		}
		replay := msg("replay-uuid", "")
		replay.Metadata.Set(levee.KeyDedupID, "poison")
		if _, err := hp(replay); err != nil {
			t.Fatal(err)
		}
		if got := p.count(); got != 2 {
			t.Errorf("poison runs: got %d, want 2 (the dead-lettered one and its replay)", got)
		}
	})
}

// TestPanicReleasesTheClaim: a panic in the handler goes on unchanged,
// and the claim is released, so the retry runs at once.
func TestPanicReleasesTheClaim(t *testing.T) {
	d := newDedup(t)
	calls := 0
	h := d.Middleware(func(*message.Message) ([]*message.Message, error) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return nil, nil
	})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the handler's panic", r)
			}
		}()
		_, _ = h(msg("m1", ""))
	}()
	if _, err := h(msg("m1", "")); err != nil {
		t.Fatalf("retry after a panic: got %v, want nil (the claim was released)", err)
	}
	if calls != 2 {
		t.Errorf("calls: got %d, want 2", calls)
	}
}

// TestNamespaces: two handlers sharing a store, each with its namespace,
// both run the same message once; nothing is written on a message that
// succeeded (TestIdentityIsWrittenForDeadLetters: the identity written on
// a failure carries no namespace).
func TestNamespaces(t *testing.T) {
	store, err := dedup.NewMemStore(10)
	if err != nil {
		t.Fatal(err)
	}
	byMeta, _ := dedup.MetadataKey("order_id")
	var a, b counter
	ha := newDedup(t, dedup.WithStore(store), dedup.WithNamespace("a"), dedup.WithKeyFunc(byMeta)).Middleware(a.handle)
	hb := newDedup(t, dedup.WithStore(store), dedup.WithNamespace("b"), dedup.WithKeyFunc(byMeta)).Middleware(b.handle)
	for range 2 {
		for _, h := range []message.HandlerFunc{ha, hb} {
			m := msg("m1", "")
			m.Metadata.Set("order_id", "o1")
			if _, err := h(m); err != nil {
				t.Fatal(err)
			}
			if got, set := m.Metadata[levee.KeyDedupID]; set {
				t.Errorf("%s of a success: got %q, want none", levee.KeyDedupID, got)
			}
		}
	}
	if a.count() != 1 || b.count() != 1 {
		t.Errorf("runs: got a %d, b %d; want 1 each", a.count(), b.count())
	}
	if done, _ := store.IsDone(context.Background(), dedup.StoreKey("a", "o1")); !done {
		t.Error(`"a/o1" is not done in the store`)
	}
}
