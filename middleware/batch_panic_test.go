package middleware_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// TestBatchPanicDeadLettersOnlyThePoison: behind the dlq slot, a batch
// func that panics on one message of a batch of four. Before, the batcher
// failed the whole batch with the panic and the dlq dead-lettered all four
// at once, class panic, each with the poison's panic as its reason. Only
// the poison is dead-lettered now, with its own panic and stack; its
// neighbours are written and acked.
func TestBatchPanicDeadLettersOnlyThePoison(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		written := map[string]int{}
		b, err := batch.New(func(_ context.Context, msgs []*message.Message) error {
			for _, m := range msgs {
				if m.UUID == "poison" {
					panic("poison payload")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				written[m.UUID]++
			}
			return nil
		}, batch.WithMaxSize(4))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pub := &capture{}
		d, err := dlq.New(pub, dlq.WithTopic("t.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		h := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware).Middleware(b.Handler)
		var wg sync.WaitGroup
		for _, id := range []string{"a", "poison", "b", "c"} {
			wg.Go(func() {
				if _, err := h(message.NewMessage(id, []byte(id))); err != nil {
					t.Errorf("%s: got %v, want acked (written or dead-lettered)", id, err)
				}
			})
		}
		wg.Wait()
		if len(pub.msgs) != 1 || pub.msgs[0].UUID != "poison" {
			var got []string
			for _, m := range pub.msgs {
				got = append(got, m.UUID)
			}
			t.Fatalf("dead letters: got %v, want only poison", got)
		}
		md := pub.msgs[0].Metadata
		if md.Get(dlq.KeyErrorClass) != "panic" || md.Get(dlq.KeyError) != "levee: panic: poison payload" || md.Get(dlq.KeyStack) == "" {
			t.Errorf("dead letter: class %q error %q stack %d bytes, want panic, its own panic and a stack",
				md.Get(dlq.KeyErrorClass), md.Get(dlq.KeyError), len(md.Get(dlq.KeyStack)))
		}
		for _, id := range []string{"a", "b", "c"} {
			if written[id] != 1 {
				t.Errorf("%s written %d times, want once", id, written[id])
			}
		}
	})
}
