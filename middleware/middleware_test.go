package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

func record(log *[]string, name string) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			*log = append(*log, name)
			return next(msg)
		}
	}
}

func TestChainFirstIsOutermost(t *testing.T) {
	var log []string
	h := middleware.Chain(record(&log, "a"), nil, record(&log, "b"), record(&log, "c"))(
		func(*message.Message) ([]*message.Message, error) { log = append(log, "h"); return nil, nil })
	if _, err := h(message.NewMessage("1", nil)); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(log, ","), "a,b,c,h"; got != want {
		t.Fatalf("got order %s, want %s", got, want)
	}
}

func TestStackOrderIndependentOfSetOrder(t *testing.T) {
	slots := middleware.Slots()
	// Every rotation of the set order must give the canonical order.
	for shift := range slots {
		var log []string
		s := middleware.NewStack()
		for i := range slots {
			slot := slots[(i+shift)%len(slots)]
			s.Set(slot, record(&log, slot.String()))
		}
		h := s.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		if _, err := h(message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		want := "tracing,metrics,recover,dlq,dedup,breaker,priority,ratelimit,timeout"
		if got := strings.Join(log, ","); got != want {
			t.Fatalf("shift %d: got %s, want %s", shift, got, want)
		}
	}
}

func TestStackSetNilEmptiesSlot(t *testing.T) {
	var log []string
	s := middleware.NewStack().Breaker(record(&log, "breaker"))
	if !s.Has(middleware.SlotBreaker) || s.Len() != 1 {
		t.Fatalf("got Has=%v Len=%d, want true 1", s.Has(middleware.SlotBreaker), s.Len())
	}
	s.Breaker(nil)
	if s.Has(middleware.SlotBreaker) || s.Len() != 0 || s.Describe() != "" {
		t.Fatalf("slot not emptied: Len=%d Describe=%q", s.Len(), s.Describe())
	}
}

func TestParseSlot(t *testing.T) {
	for _, slot := range middleware.Slots() {
		got, ok := middleware.ParseSlot(slot.String())
		if !ok || got != slot {
			t.Fatalf("ParseSlot(%q) = %v %v, want %v", slot, got, ok, slot)
		}
	}
	if _, ok := middleware.ParseSlot("nope"); ok {
		t.Fatal("ParseSlot(nope) ok, want false")
	}
	if got := middleware.Slot(99).String(); got != "Slot(99)" {
		t.Fatalf("got %q", got)
	}
}

func TestRecover(t *testing.T) {
	sentinel := errors.New("db down")
	tests := []struct {
		name    string
		panicV  any
		wantMsg string
		wantIs  error
	}{
		{"string", "boom", "levee: panic: boom", nil},
		{"error", sentinel, "levee: panic: db down", sentinel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := middleware.Recover(func(*message.Message) ([]*message.Message, error) {
				panic(tt.panicV)
			})
			out, err := h(message.NewMessage("1", nil))
			if out != nil {
				t.Fatalf("got produced messages %v, want none", out)
			}
			var pe *levee.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T %v, want *PanicError", err, err)
			}
			if err.Error() != tt.wantMsg {
				t.Fatalf("got %q, want %q", err.Error(), tt.wantMsg)
			}
			if pe.ErrorClass() != string(levee.ClassPanic) {
				t.Fatalf("got class %q, want %q", pe.ErrorClass(), string(levee.ClassPanic))
			}
			if !strings.Contains(string(pe.Stack), "middleware_test") {
				t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestRecoverRuntimeError(t *testing.T) {
	h := middleware.Recover(func(msg *message.Message) ([]*message.Message, error) {
		var idx []int
		_ = idx[len(msg.Payload)] // index out of range
		return nil, nil
	})
	_, err := h(message.NewMessage("1", nil))
	var pe *levee.PanicError
	if !errors.As(err, &pe) || len(pe.Stack) == 0 || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("got %v, want *PanicError for the runtime error, with a stack", err)
	}
}

func TestRecoverPassesThrough(t *testing.T) {
	want := errors.New("plain")
	h := middleware.Recover(func(*message.Message) ([]*message.Message, error) { return nil, want })
	if _, err := h(message.NewMessage("1", nil)); err != want {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func TestNewTimeoutRejectsNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := middleware.NewTimeout(d); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Fatalf("NewTimeout(%s): got %v, want ErrInvalidConfig", d, err)
		}
	}
}

func TestTimeoutBoundsAttemptAndRestoresContext(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		to, err := middleware.NewTimeout(50 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		orig, cancel := context.WithCancel(context.Background())
		defer cancel()
		msg := message.NewMessage("1", nil)
		msg.SetContext(orig)
		start := time.Now()
		var inner context.Context
		h := to.Middleware(func(m *message.Message) ([]*message.Message, error) {
			inner = m.Context()
			<-m.Context().Done()
			return nil, m.Context().Err()
		})
		_, err = h(msg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 50*time.Millisecond {
			t.Fatalf("attempt took %s, want 50ms", got)
		}
		if msg.Context() != orig {
			t.Fatal("message context not restored after the attempt")
		}
		if orig.Err() != nil {
			t.Fatalf("original context ended: %v", orig.Err())
		}
		if inner.Err() == nil {
			t.Fatal("attempt context still live after return")
		}
	})
}

func TestTimeoutRestoresContextOnPanic(t *testing.T) {
	to, _ := middleware.NewTimeout(time.Second)
	msg := message.NewMessage("1", nil)
	orig := msg.Context()
	h := middleware.Recover(to.Middleware(func(*message.Message) ([]*message.Message, error) { panic("x") }))
	if _, err := h(msg); !levee.IsPanic(err) {
		t.Fatalf("got %v, want panic error", err)
	}
	if msg.Context() != orig {
		t.Fatal("context not restored after panic")
	}
}

// A panicking handler behind Recover does not take the process down when
// run by a real router, and the message is not acked.
func TestRecoverInRouter(t *testing.T) {
	h := testkit.New(t)
	calls := 0
	h.Handle("panicky", "in", func(msg *message.Message) error {
		calls++
		if calls == 1 {
			panic("first delivery fails")
		}
		return nil
	}, middleware.Recover)
	h.Start()
	h.PublishN("in", 1, nil)
	c := h.WaitSettled(1, 5*time.Second)
	if c.Nacked != 1 || c.Acked != 1 {
		t.Fatalf("got %s, want 1 nack then 1 ack", c)
	}
}
