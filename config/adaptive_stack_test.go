package config_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
)

const adaptiveStackYAML = `
handlers:
  h:
    dlq: {topic: h.dlq, max_hold: 100ms, retry: {max_attempts: 1}}
    dedup: {key: {metadata: id}}
    breaker: {consecutive_failures: 1000}
    ratelimit:
      rate: 200/s
      burst: 10
      adaptive: {min: 10/s, max: 1000/s, target_latency: 50ms, min_samples: 10, interval: 100ms}
    timeout: 30ms
`

// TestAdaptiveInTheCanonicalStack runs an adaptive limit in the stack
// config.Build makes (dlq, dedup, breaker, ratelimit, timeout) and checks
// what it reads: duplicates (acked by dedup, further out) and handler
// deferrals (a downstream's 429 on every other call, retried at once)
// neither cut nor raise it, permanent errors (dead-lettered) do not cut
// it, and attempts the timeout ends (the downstream too slow: the handler
// returns the context's error) cut it. Before the fix of deferred
// permits, the deferrals raised it from 200/s to 660/s.
func TestAdaptiveInTheCanonicalStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := config.Parse("levee.yaml", []byte(adaptiveStackYAML), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{Publisher: discard{}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		l, _ := a.Limiter("h")
		var kind string
		var calls atomic.Int64
		h := a.Stack("h").Middleware(func(m *message.Message) ([]*message.Message, error) {
			calls.Add(1)
			switch kind {
			case "defer": // every other message: the downstream answers 429
				time.Sleep(2 * time.Millisecond)
				// by the message's own number, not by a count of calls the
				// four workers share: read after their increments, that
				// count let several calls in a row through under -race,
				// and a window with few deferrals rightly raised the rate
				if n, _ := strconv.Atoi(strings.TrimPrefix(m.Metadata.Get("id"), "fresh-")); n%2 == 0 {
					return nil, levee.Defer(0, errors.New("429"))
				}
				return nil, nil
			case "permanent":
				time.Sleep(2 * time.Millisecond)
				return nil, permanent{}
			case "slow":
				<-m.Context().Done()
				return nil, m.Context().Err()
			}
			time.Sleep(2 * time.Millisecond)
			return nil, nil
		})
		run := func(k string, n int, id func(i int) string) {
			kind = k
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < n; i += 4 {
						m := message.NewMessage("m", nil)
						m.Metadata.Set("id", id(i))
						_, _ = h(m)
					}
				})
			}
			wg.Wait()
		}
		var seq atomic.Int64
		fresh := func(int) string { return "fresh-" + strconv.FormatInt(seq.Add(1), 10) }
		run("ok", 1, func(int) string { return "dup" }) // the one that dedup will see again
		start := l.Rate()
		run("ok", 2000, func(int) string { return "dup" })
		if n := calls.Load(); n != 1 {
			t.Fatalf("the handler ran %d times for one id, want once (dedup acks the duplicates)", n)
		}
		if got := l.Rate(); got != start {
			t.Errorf("2000 duplicates moved the rate from %v to %v", start, got)
		}
		run("defer", 2000, fresh)
		if got := l.Rate(); got != start {
			t.Errorf("2000 calls, every other one deferred, moved the rate from %v to %v", start, got)
		}
		run("permanent", 500, fresh)
		if got := l.Rate(); got < start {
			t.Errorf("500 permanent errors cut the rate from %v to %v", start, got)
		}
		before := l.Rate()
		run("slow", 100, fresh)
		if got := l.Rate(); got >= before {
			t.Errorf("100 attempts ended by the timeout left the rate at %v (from %v), want a cut", got, before)
		}
	})
}

type permanent struct{}

func (permanent) Error() string      { return "bad message" }
func (permanent) ErrorClass() string { return "permanent" }
