package config_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/priority"
)

// TestSharedSchedulerLeaksNoSlot: three handlers built from one file share
// a scheduler of 2 slots: one behind a breaker that opens (its handler
// fails), one behind a rate limit that defers at max_wait, one whose
// attempts time out or panic; messages of every handler also have their
// context end while queued. When every delivery has returned, no slot is
// held and nothing waits, and a new message of each handler gets a slot.
func TestSharedSchedulerLeaksNoSlot(t *testing.T) {
	y := "schedulers:\n  shared: {slots: 2, aging: 100ms, max_waiting: 8}\n" +
		"handlers:\n" +
		"  pay:\n    recover: true\n    breaker: {failure_ratio: 50%, min_requests: 4, open_for: 1s, max_hold: 300ms}\n    priority: {scheduler: shared}\n" +
		"  notify:\n    priority: {scheduler: shared}\n    ratelimit: {rate: 2/s, max_wait: 200ms}\n" +
		"  slow:\n    recover: true\n    timeout: 100ms\n    priority: {scheduler: shared}\n"
	synctest.Test(t, func(t *testing.T) {
		applied := buildFile(t, y)
		s, ok := applied.Scheduler("pay")
		if !ok {
			t.Fatal("no scheduler")
		}
		hs := map[string]message.HandlerFunc{
			"pay": applied.Stack("pay").Middleware(func(*message.Message) ([]*message.Message, error) {
				time.Sleep(20 * time.Millisecond)
				return nil, errors.New("gateway down")
			}),
			"notify": applied.Stack("notify").Middleware(func(*message.Message) ([]*message.Message, error) {
				time.Sleep(10 * time.Millisecond)
				return nil, nil
			}),
			"slow": applied.Stack("slow").Middleware(func(m *message.Message) ([]*message.Message, error) {
				if m.Metadata.Get("panic") != "" {
					panic("boom")
				}
				select {
				case <-m.Context().Done():
					return nil, m.Context().Err()
				case <-time.After(time.Second):
					return nil, nil
				}
			}),
		}
		var wg sync.WaitGroup
		for i := range 60 {
			for name, h := range hs {
				wg.Go(func() {
					m := message.NewMessage(name+string(rune('a'+i%26))+string(rune('0'+i/26)), nil)
					priority.Set(m, i%10)
					if i%7 == 0 {
						m.Metadata.Set("panic", "1")
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+i*13%400)*time.Millisecond)
					defer cancel()
					m.SetContext(ctx)
					func() {
						defer func() { _ = recover() }()
						_, _ = h(m)
					}()
				})
				time.Sleep(5 * time.Millisecond)
			}
		}
		wg.Wait()
		st := s.Stats()
		if st.InUse != 0 || st.Waiting != 0 {
			t.Fatalf("after every delivery returned: got %d slots in use and %d waiting, want 0 and 0", st.InUse, st.Waiting)
		}
		time.Sleep(2 * time.Second) // the breaker's open_for passes
		for name, h := range hs {
			m := message.NewMessage("after-"+name, nil)
			if _, err := h(m); errors.As(err, new(*priority.RejectError)) {
				t.Errorf("%s after the storm: got %v, want a slot and the handler's result", name, err)
			}
		}
		if st := s.Stats(); st.InUse != 0 {
			t.Fatalf("got %d slots in use at the end, want 0", st.InUse)
		}
	})
}

// buildFile parses y as levee.yaml and builds it with no deps, closing
// what it built when the test ends.
func buildFile(t *testing.T, y string) *config.Applied {
	t.Helper()
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := config.Build(cfg, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = applied.Close() })
	return applied
}
