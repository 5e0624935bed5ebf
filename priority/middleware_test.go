package priority_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
)

func msgWith(id string, meta map[string]string) *message.Message {
	m := message.NewMessage(id, nil)
	for k, v := range meta {
		m.Metadata.Set(k, v)
	}
	return m
}

func TestMiddlewareReleases(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		handler message.HandlerFunc
		wantErr func(error) bool
	}{
		{"success", func(*message.Message) ([]*message.Message, error) { return nil, nil },
			func(err error) bool { return err == nil }},
		{"error", func(*message.Message) ([]*message.Message, error) { return nil, errBoom },
			func(err error) bool { return errors.Is(err, errBoom) }},
		{"panic", func(*message.Message) ([]*message.Message, error) { panic("kaboom") },
			levee.IsPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScheduler(t, priority.WithSlots(1))
			h := middleware.Recover(s.Middleware(tt.handler))
			for i := range 3 { // would block on the second call if the slot leaked
				_, err := h(message.NewMessage(strconv.Itoa(i), nil))
				if !tt.wantErr(err) {
					t.Fatalf("call %d: unexpected error %v", i, err)
				}
				if st := s.Stats(); st.InUse != 0 {
					t.Fatalf("call %d: inUse after return: got %d, want 0", i, st.InUse)
				}
			}
		})
	}
}

// TestPanicReleaseHandsSlotOn: a panicking holder passes its slot to the
// highest waiting message.
func TestPanicReleaseHandsSlotOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, priority.WithSlots(1))
		start := make(chan struct{})
		var ran []string
		var mu sync.Mutex
		h := middleware.Recover(s.Middleware(func(m *message.Message) ([]*message.Message, error) {
			if m.UUID == "panicker" {
				<-start
				panic("kaboom")
			}
			mu.Lock()
			ran = append(ran, m.UUID)
			mu.Unlock()
			return nil, nil
		}))
		errs := make(chan error, 3)
		go func() { _, err := h(msgWith("panicker", nil)); errs <- err }()
		synctest.Wait()
		go func() { _, err := h(msgWith("low", map[string]string{levee.KeyPriority: "1"})); errs <- err }()
		synctest.Wait()
		go func() { _, err := h(msgWith("high", map[string]string{levee.KeyPriority: "8"})); errs <- err }()
		synctest.Wait()
		close(start)
		synctest.Wait()
		var panics int
		for range 3 {
			if err := <-errs; levee.IsPanic(err) {
				panics++
			} else if err != nil {
				t.Errorf("unexpected error %v", err)
			}
		}
		if panics != 1 {
			t.Errorf("panics: got %d, want 1", panics)
		}
		if !equal(ran, []string{"high", "low"}) {
			t.Errorf("run order: got %v, want [high low]", ran)
		}
	})
}

func TestMiddlewarePriorityFromMessage(t *testing.T) {
	tests := []struct {
		name        string
		opts        []priority.MiddlewareOption
		meta        map[string]string
		want        int
		wantInvalid int64
		wantClamped int64
	}{
		{"metadata", nil, map[string]string{levee.KeyPriority: "7"}, 7, 0, 0},
		{"absent takes the default", nil, nil, 2, 0, 0},
		{"garbage takes the default and is counted", nil, map[string]string{levee.KeyPriority: "urgent"}, 2, 1, 0},
		{"empty is garbage", nil, map[string]string{levee.KeyPriority: ""}, 2, 1, 0},
		{"negative is clamped", nil, map[string]string{levee.KeyPriority: "-4"}, 0, 0, 1},
		{"enormous is clamped", nil, map[string]string{levee.KeyPriority: "184467440737095516150000"}, 9, 0, 1},
		{"handler default", []priority.MiddlewareOption{priority.WithHandlerPriority(6)}, map[string]string{levee.KeyPriority: "?"}, 6, 1, 0},
		{"func", []priority.MiddlewareOption{priority.WithPriorityFunc(func(m *message.Message) int { return len(m.Payload) })},
			map[string]string{levee.KeyPriority: "1"}, 3, 0, 0},
		{"func result is clamped", []priority.MiddlewareOption{priority.WithPriorityFunc(func(*message.Message) int { return 100 })}, nil, 9, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScheduler(t, priority.WithDefaultPriority(2))
			mw, err := s.HandlerMiddleware(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			h := mw(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			m := msgWith("m", tt.meta)
			m.Payload = []byte("abc")
			if _, err := h(m); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if st.Levels[tt.want].Granted != 1 {
				t.Errorf("granted at priority %d: got %d, want 1", tt.want, st.Levels[tt.want].Granted)
			}
			if st.InvalidPriority != tt.wantInvalid || st.ClampedPriority != tt.wantClamped {
				t.Errorf("invalid, clamped: got %d, %d, want %d, %d", st.InvalidPriority, st.ClampedPriority, tt.wantInvalid, tt.wantClamped)
			}
		})
	}
}

func TestHandlerMiddlewareInvalid(t *testing.T) {
	s := newScheduler(t)
	for _, p := range []int{-1, 10} {
		if _, err := s.HandlerMiddleware(priority.WithHandlerPriority(p)); !errors.Is(err, priority.ErrInvalidConfig) {
			t.Errorf("WithHandlerPriority(%d): got %v, want ErrInvalidConfig", p, err)
		}
	}
}

// TestMiddlewareRejectionNacks: a rejected message never reaches the
// handler and returns the typed error (the router Nacks it).
func TestMiddlewareRejectionNacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, priority.WithSlots(1), priority.WithMaxWait(time.Second))
		var calls atomic.Int64
		release := make(chan struct{})
		h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
			calls.Add(1)
			<-release
			return nil, nil
		})
		errs := make(chan error, 2)
		for i := range 2 {
			go func() { _, err := h(message.NewMessage(strconv.Itoa(i), nil)); errs <- err }()
			synctest.Wait()
		}
		time.Sleep(time.Second)
		err := <-errs
		if !errors.Is(err, priority.ErrMaxWait) {
			t.Fatalf("got %v, want ErrMaxWait", err)
		}
		close(release)
		if err := <-errs; err != nil {
			t.Fatalf("holder: %v", err)
		}
		if calls.Load() != 1 {
			t.Errorf("handler calls: got %d, want 1 (the rejected message must not run)", calls.Load())
		}
	})
}

// TestTwoHandlersShareOneScheduler: two handlers with their own messages
// never exceed the shared slots together, and a high-priority message of
// one overtakes the waiting low-priority messages of the other.
func TestTwoHandlersShareOneScheduler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slots = 2
		s := newScheduler(t, priority.WithSlots(slots), priority.WithAging(time.Hour))
		var inUse, peak atomic.Int64
		var mu sync.Mutex
		var order []string
		work := func(m *message.Message) ([]*message.Message, error) {
			n := inUse.Add(1)
			if n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			order = append(order, m.UUID)
			mu.Unlock()
			inUse.Add(-1)
			return nil, nil
		}
		bulk := s.Middleware(work)
		vipMW, err := s.HandlerMiddleware(priority.WithHandlerPriority(8))
		if err != nil {
			t.Fatal(err)
		}
		vip := vipMW(work)
		var wg sync.WaitGroup
		call := func(h message.HandlerFunc, id string) {
			wg.Go(func() {
				if _, err := h(message.NewMessage(id, nil)); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			})
			synctest.Wait()
		}
		for i := range 6 {
			call(bulk, fmt.Sprint("bulk", i))
		}
		for i := range 2 {
			call(vip, fmt.Sprint("vip", i))
		}
		wg.Wait()
		if peak.Load() > slots {
			t.Errorf("peak concurrency: got %d, want at most %d", peak.Load(), slots)
		}
		want := []string{"bulk0", "bulk1", "vip0", "vip1", "bulk2", "bulk3", "bulk4", "bulk5"}
		if !equal(order[:2], want[:2]) && !equal(order[:2], []string{"bulk1", "bulk0"}) || !equal(order[2:4], want[2:4]) && !equal(order[2:4], []string{"vip1", "vip0"}) {
			t.Errorf("completion order: got %v, want the two running bulk, then both vip, then the rest", order)
		}
		st := s.Stats()
		if st.Levels[8].Granted != 2 || st.Levels[0].Granted != 6 {
			t.Errorf("granted: got vip %d bulk %d, want 2 and 6", st.Levels[8].Granted, st.Levels[0].Granted)
		}
	})
}

// TestSequentialConsumptionKeepsArrivalOrder documents the limit from
// doc.go: a transport that hands over one message at a time (and waits
// for its result) never has two waiting, so priority cannot reorder them.
func TestSequentialConsumptionKeepsArrivalOrder(t *testing.T) {
	s := newScheduler(t, priority.WithSlots(1))
	var order []string
	h := s.Middleware(func(m *message.Message) ([]*message.Message, error) {
		order = append(order, m.UUID)
		return nil, nil
	})
	for i, p := range []string{"0", "9", "3", "9"} {
		if _, err := h(msgWith(fmt.Sprintf("m%d-p%s", i, p), map[string]string{levee.KeyPriority: p})); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"m0-p0", "m1-p9", "m2-p3", "m3-p9"}; !equal(order, want) {
		t.Errorf("order: got %v, want arrival order %v", order, want)
	}
}

func TestMiddlewareContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, priority.WithSlots(1))
		hold(t, s, 1)
		h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
			t.Error("handler called for a cancelled message")
			return nil, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		m := message.NewMessage("m", nil)
		m.SetContext(ctx)
		errs := make(chan error, 1)
		go func() { _, err := h(m); errs <- err }()
		synctest.Wait()
		cancel()
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		s.Release()
	})
}

func TestPriorityFuncPanicHoldsNoSlot(t *testing.T) {
	s := newScheduler(t, priority.WithSlots(1))
	mw, err := s.HandlerMiddleware(priority.WithPriorityFunc(func(*message.Message) int { panic("bad func") }))
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.Recover(mw(func(*message.Message) ([]*message.Message, error) { return nil, nil }))
	if _, err := h(message.NewMessage("m", nil)); !levee.IsPanic(err) {
		t.Fatalf("got %v, want a panic error", err)
	}
	if st := s.Stats(); st.InUse != 0 || st.Waiting != 0 {
		t.Errorf("after the panic: inUse=%d waiting=%d, want 0 and 0", st.InUse, st.Waiting)
	}
}
