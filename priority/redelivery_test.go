package priority_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/priority"
)

// TestShedRedeliveryKeepsAging: with a bounded queue under a flood of
// priority 9, a priority-0 message is shed, and each redelivery (after the
// scheduler's RetryAfter) asks again. Its age counts from its first
// arrival, so it is served within the aging bound (9·aging) plus one
// redelivery delay, not after the flood ends (before the fix its aging
// restarted at every redelivery and it was shed until the flood stopped).
func TestShedRedeliveryKeepsAging(t *testing.T) {
	// A producer's UUID of any size is remembered (by its digest when
	// long), and a message without one by its content (before, it was not
	// remembered and aged from each redelivery).
	for _, low := range []string{"low", strings.Repeat("low", 1<<18), ""} {
		t.Run(strconv.Itoa(len(low))+"-byte uuid", func(t *testing.T) { shedRedeliveryKeepsAging(t, low) })
	}
}

func shedRedeliveryKeepsAging(t *testing.T, low string) {
	synctest.Test(t, func(t *testing.T) {
		const (
			aging   = 500 * time.Millisecond
			retry   = time.Second
			service = 10 * time.Millisecond
			flood   = 20 * time.Second
		)
		s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(10),
			priority.WithAging(aging), priority.WithRetryAfter(retry))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
			time.Sleep(service)
			return nil, nil
		})
		deliver := func(uuid string, p int) error {
			m := message.NewMessage(uuid, nil)
			m.Metadata.Set(levee.KeyPriority, strconv.Itoa(p))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m.SetContext(ctx)
			_, err := h(m)
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { // 200/s of priority 9 against a throughput of 100/s
			for i := 0; time.Since(start) < flood; i++ {
				wg.Go(func() { _ = deliver("high-"+strconv.Itoa(i), 9) })
				time.Sleep(5 * time.Millisecond)
			}
		})
		time.Sleep(time.Second) // the queue is full of priority 9
		arrived := time.Now()
		sheds := 0
		for {
			err := deliver(low, 0)
			if err == nil {
				break
			}
			var re *priority.RejectError
			if !errors.As(err, &re) {
				t.Fatalf("low: got %v, want a rejection or a slot", err)
			}
			sheds++
			time.Sleep(re.RetryAfter()) // the transport redelivers after RetryAfter
		}
		served := time.Since(arrived)
		wg.Wait()
		if bound := 9*aging + retry + service; served > bound {
			t.Errorf("priority 0 served %s after its first arrival (shed %d times), want within %s", served, sheds, bound)
		}
		if sheds == 0 {
			t.Errorf("priority 0 was never shed: the test did not make the queue full")
		}
	})
}

// TestDocArrivalMemory keeps docs/PRIORITY.md's count of remembered
// arrivals equal to ArrivalMemory, and their lifetime to ArrivalTTL.
func TestDocArrivalMemory(t *testing.T) {
	doc, err := os.ReadFile("../docs/PRIORITY.md")
	if err != nil {
		t.Fatal(err)
	}
	n := strconv.Itoa(priority.ArrivalMemory)
	want := "the last " + n[:len(n)-3] + "," + n[len(n)-3:] + " rejected messages"
	if !strings.Contains(strings.Join(strings.Fields(string(doc)), " "), want) {
		t.Errorf("docs/PRIORITY.md does not say %q", want)
	}
	ttl := "each for " + strings.TrimSuffix(priority.ArrivalTTL.String(), "0s") + " after its `retry_after`"
	if !strings.Contains(strings.Join(strings.Fields(string(doc)), " "), ttl) {
		t.Errorf("docs/PRIORITY.md does not say %q", ttl)
	}
}
