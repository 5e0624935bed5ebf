package ratelimit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestLimitedError(t *testing.T) {
	for _, tc := range []struct {
		why            reason
		wait           float64
		wantText       string
		wantLabel      string
		wantRetryAfter time.Duration
	}{
		{reasonNoToken, 1.5e6, "no token available", "no_token", 1500 * time.Microsecond},
		{reasonMaxWait, 2e9, "wait would exceed max_wait", "max_wait", 2 * time.Second},
		{reasonExpired, -5, "wait exceeded max_wait", "max_wait", 0},
		{reasonDeadline, 0.2, "outlast the context deadline", "deadline", 1},
	} {
		t.Run(tc.wantLabel, func(t *testing.T) {
			err := limited(tc.wait, tc.why)
			if !errors.Is(err, ErrLimited) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("got %v", err)
			}
			if got := err.RetryAfter(); got != tc.wantRetryAfter {
				t.Fatalf("RetryAfter got %v want %v", got, tc.wantRetryAfter)
			}
			if got := tc.why.label(); got != tc.wantLabel {
				t.Fatalf("label got %q want %q", got, tc.wantLabel)
			}
			var c interface{ ErrorClass() string }
			if !errors.As(error(err), &c) || c.ErrorClass() != "transient" {
				t.Fatal("not transient")
			}
		})
	}
	if got := Mode(9).String(); got != "Mode(9)" {
		t.Fatalf("Mode(9) = %q", got)
	}
	if got := ModeReject.String(); got != "reject" {
		t.Fatalf("ModeReject = %q", got)
	}
}

func TestKeyFuncPanicIsLogged(t *testing.T) {
	logger := watermill.NewCaptureLogger()
	l := mustNew(t, WithLogger(logger), WithName("sms"), WithMode(ModeReject),
		WithKeyFunc(func(*message.Message) string { panic("no customer") }), WithPerKey(10, 1))
	if _, err := l.Middleware(noop)(message.NewMessage("m1", nil)); err != nil {
		t.Fatalf("a panicking key function must not fail the message: %v", err)
	}
	errs := logger.Captured()[watermill.ErrorLogLevel]
	if len(errs) != 1 || !strings.Contains(errs[0].Err.Error(), "no customer") || errs[0].Fields["message_uuid"] != "m1" {
		t.Fatalf("logged %+v", errs)
	}
}

// TestKeyFuncPanicLogIsOneRecord: the panic's log record carries the
// message UUID, which a producer chooses: a line break in it is quoted,
// so it cannot forge a log line.
func TestKeyFuncPanicLogIsOneRecord(t *testing.T) {
	logger := watermill.NewCaptureLogger()
	l := mustNew(t, WithLogger(logger), WithKeyFunc(func(*message.Message) string { panic("no\ncustomer") }), WithPerKey(10, 1))
	if _, err := l.Middleware(noop)(message.NewMessage("m1\nlevel=ERROR forged", nil)); err != nil {
		t.Fatal(err)
	}
	errs := logger.Captured()[watermill.ErrorLogLevel]
	if len(errs) != 1 || errs[0].Fields["message_uuid"] != `"m1\nlevel=ERROR forged"` || strings.Contains(errs[0].Err.Error(), "\n") {
		t.Fatalf("logged %+v, want the UUID and the panic quoted", errs)
	}
}

// TestUndoWithQueue: a permit given back while others are queued behind
// is forfeited (they were scheduled after it); given back as the last
// grant, it is reused by the head of the queue at once.
func TestUndoWithQueue(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(10))
		b := l.b
		g, r := b.Try()
		if !r.OK() {
			t.Fatal(r)
		}
		done := make(chan time.Duration, 1)
		start := time.Now()
		go func() {
			_ = l.Wait(context.Background())
			done <- time.Since(start)
		}()
		testkit.Advance(10 * time.Millisecond)
		b.Undo(g) // nothing was granted after g: the queued waiter gets it
		if got := <-done; got != 10*time.Millisecond {
			t.Fatalf("queued waiter admitted after %v, want at the undo (10ms)", got)
		}
		if l.Keys() != 0 {
			t.Fatal("Keys without per-key limits")
		}
	})
}
