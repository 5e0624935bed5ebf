package priority_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/priority"
)

// Two handlers share one slot. While it is busy, a bulk order and then a
// VIP order wait; the VIP order gets the slot first.
func Example() {
	s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithAging(time.Minute))
	if err != nil {
		panic(err)
	}
	defer s.Close()

	var mu sync.Mutex
	var ran []string
	h := s.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		mu.Lock()
		ran = append(ran, msg.UUID)
		mu.Unlock()
		return nil, nil
	})

	// Hold the only slot so the orders have to wait.
	if err := s.Acquire(context.Background(), priority.MaxPriority); err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	for i, o := range []struct {
		id string
		p  int
	}{{"bulk-1", 0}, {"vip-1", 9}} {
		msg := message.NewMessage(o.id, nil)
		priority.Set(msg, o.p)
		wg.Go(func() { _, _ = h(msg) })
		for s.Stats().Waiting <= i {
			runtime.Gosched() // until the order queues
		}
	}
	s.Release()
	wg.Wait()
	fmt.Println(ran)
	// Output: [vip-1 bulk-1]
}

// Parse reads levee_priority values defensively.
func ExampleParse() {
	for _, v := range []string{"7", "42", "-1", "urgent"} {
		p, ok := priority.Parse(v)
		fmt.Println(v, p, ok)
	}
	// Output:
	// 7 7 true
	// 42 9 true
	// -1 0 true
	// urgent 0 false
}
