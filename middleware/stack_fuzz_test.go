package middleware_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// fuzzMaxAttempts is the dlq's retry budget in FuzzStack.
const fuzzMaxAttempts = 5

// Fates of the fuzzed message: what its handler does.
const (
	fateHealthy   = iota // succeeds at once
	fateTransient        // fails k times (transient), then succeeds
	fatePermanent        // fails with a permanent error
	fatePanic            // panics
	fatePoison           // always fails (transient)
	fateDefer            // the handler itself defers k times, then succeeds
	numFates
)

// stackPublisher records dead letters.
type stackPublisher struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (p *stackPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *stackPublisher) Close() error { return nil }

// fuzzMetadata turns raw into metadata: pairs of NUL-separated key and
// value, with the keys Levee reads among the candidates, so the fuzzer
// reaches control keys, priority, replay and failure keys with any value.
func fuzzMetadata(raw []byte) message.Metadata {
	keys := []string{levee.KeyDeliveryCount, levee.KeyRetryAfter, levee.KeyRedeliverAt,
		levee.KeyPriority, dlq.KeyReplayCount, dlq.KeyOriginalUUID, dlq.KeyAttempts,
		dlq.KeyErrorClass, dlq.KeyFirstFailureAt, dlq.KeyOriginalTopic, "traceparent", "tracestate"}
	md := message.Metadata{}
	var parts [][]byte
	start := 0
	for i, b := range raw {
		if b == 0 {
			parts = append(parts, raw[start:i])
			start = i + 1
		}
	}
	parts = append(parts, raw[start:])
	for i := 0; i+1 < len(parts); i += 2 {
		k := string(parts[i])
		if len(parts[i]) == 1 {
			k = keys[int(parts[i][0])%len(keys)]
		}
		md[k] = string(parts[i+1])
	}
	return md
}

// FuzzStack drives one message with fuzzed metadata and a fuzzed fate
// through the canonical stack (recover, dlq, breaker, priority, ratelimit,
// timeout), delivered again after each Nack as one of four transports
// would (immediate or delayed, with or without a broker delivery count),
// after the adapters' ingress boundary. Whatever the metadata: no panic
// escapes, the message is never lost (it ends processed or dead-lettered,
// never both), a healthy or recovering message is never dead-lettered, and
// a failing one gets exactly the handler calls its class allows (1 for
// permanent and panic, max attempts for a poison).
func FuzzStack(f *testing.F) {
	f.Add(byte(fateHealthy), byte(0), byte(0), []byte{})
	f.Add(byte(fatePoison), byte(0), byte(1), []byte{0, 0, '9', '9'})
	f.Add(byte(fateTransient), byte(3), byte(2), []byte{1, 0, '1', 'h'})
	f.Add(byte(fatePermanent), byte(0), byte(3), []byte{3, 0, 'x'})
	f.Add(byte(fatePanic), byte(0), byte(0), []byte{4, 0, '-', '1'})
	f.Add(byte(fateDefer), byte(4), byte(1), []byte{2, 0, '9', '9', '9', '9', '9', '9', '9', '9', '9'})
	f.Add(byte(fatePoison), byte(0), byte(3), []byte("levee_delivery_count\x0099999999999999999999"))
	f.Fuzz(func(t *testing.T, fate, k, model byte, raw []byte) {
		synctest.Test(t, func(t *testing.T) { runFuzzStack(t, int(fate)%numFates, int(k)%8, int(model)%4, raw) })
	})
}

// runFuzzStack is one FuzzStack execution; its length is the checks, one
// per fate.
func runFuzzStack(t *testing.T, fate, k, model int, raw []byte) {
	pub := &stackPublisher{}
	d, err := dlq.New(pub, dlq.WithTopic("t.dlq"), dlq.WithMaxAttempts(fuzzMaxAttempts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := breaker.New(breaker.WithMaxHold(time.Second), breaker.WithOpenFor(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := priority.NewScheduler(priority.WithSlots(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := ratelimit.New(ratelimit.WithRate(100), ratelimit.WithMode(ratelimit.ModeReject))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	to, err := middleware.NewTimeout(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dd, err := dedup.New()
	if err != nil {
		t.Fatal(err)
	}
	calls, successes := 0, 0
	h := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Dedup(dd.Middleware).Breaker(b.Middleware).
		Priority(s.Middleware).RateLimit(l.Middleware).Timeout(to.Middleware).
		Middleware(func(*message.Message) ([]*message.Message, error) {
			calls++
			switch {
			case fate == fatePermanent:
				return nil, dlq.Permanent(errors.New("bad"))
			case fate == fatePanic:
				panic("boom")
			case fate == fatePoison, fate == fateTransient && calls <= k:
				return nil, errors.New("flaky")
			case fate == fateDefer && calls <= k:
				return nil, levee.Defer(100*time.Millisecond, nil)
			}
			successes++
			return nil, nil
		})

	md := fuzzMetadata(raw)
	counted, delayed := model&1 == 1, model&2 == 2
	acked := false
	deliveries := 0
	for ; deliveries < 1000 && !acked; deliveries++ {
		m := message.NewMessage("m", nil)
		for key, v := range md {
			m.Metadata[key] = v
		}
		// The adapters' ingress: producers' control keys are stripped; a
		// transport that counts deliveries sets the broker's count.
		levee.StripControl(m.Metadata)
		if counted {
			m.Metadata.Set(levee.KeyDeliveryCount, strconv.Itoa(deliveries+1))
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.SetContext(ctx)
		_, err := h(m)
		cancel()
		if err == nil {
			acked = true
			break
		}
		var ra interface{ RetryAfter() time.Duration }
		if delayed && errors.As(err, &ra) {
			time.Sleep(min(ra.RetryAfter(), levee.MaxRetryAfter))
		}
	}
	if !acked {
		t.Fatalf("fate %d: not settled after %d deliveries (%d calls)", fate, deliveries, calls)
	}
	dead := len(pub.msgs)
	switch {
	case fate == fatePermanent || fate == fatePanic:
		if dead != 1 || calls != 1 {
			t.Fatalf("fate %d: %d dead letters after %d calls, want 1 after 1", fate, dead, calls)
		}
	case fate == fatePoison || fate == fateTransient && k >= fuzzMaxAttempts:
		if dead != 1 || calls != fuzzMaxAttempts || successes != 0 {
			t.Fatalf("fate %d k %d: %d dead letters after %d calls, want 1 after exactly %d", fate, k, dead, calls, fuzzMaxAttempts)
		}
		if got := pub.msgs[0].Metadata.Get(dlq.KeyAttempts); got != strconv.Itoa(fuzzMaxAttempts) {
			t.Fatalf("fate %d: dead letter attempts %q, want %d", fate, got, fuzzMaxAttempts)
		}
	default: // healthy, transient within budget, deferring
		if dead != 0 || successes != 1 {
			t.Fatalf("fate %d k %d model %d: %d dead letters, %d successes after %d calls; want 0 and 1",
				fate, k, model, dead, successes, calls)
		}
	}
	if d.Pending() != 0 {
		t.Fatalf("attempt table holds %d entries after the message settled", d.Pending())
	}
}
