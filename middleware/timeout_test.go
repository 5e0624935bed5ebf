package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// runTimeout runs fn as the handler behind a Timeout of d, on a message
// whose context is parent, and returns fn's error and the attempt context.
func runTimeout(t *testing.T, d time.Duration, parent context.Context, fn func(ctx context.Context) error) (context.Context, error) {
	t.Helper()
	to, err := middleware.NewTimeout(d)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("1", nil)
	msg.SetContext(parent)
	var inner context.Context
	_, err = to.Middleware(func(m *message.Message) ([]*message.Message, error) {
		inner = m.Context()
		return nil, fn(inner)
	})(msg)
	if msg.Context() != parent {
		t.Fatal("message context not restored after the attempt")
	}
	return inner, err
}

// The attempt context behaves as context.WithTimeout's, whether or not
// anything waited on it, at every point of its life.
func TestTimeoutContextGuarantees(t *testing.T) {
	const d = 50 * time.Millisecond
	type key struct{}
	cases := []struct {
		name string
		// fn is the handler; it returns the error the attempt returns.
		fn      func(t *testing.T, ctx context.Context, cancelParent context.CancelFunc) error
		wantErr error
		// wantAfter is the attempt context's Err after the attempt.
		wantAfter error
	}{
		{"select on Done ends at the deadline", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			start := time.Now()
			<-ctx.Done()
			if got := time.Since(start); got != d {
				t.Errorf("waited %s, want %s", got, d)
			}
			if got := context.Cause(ctx); !errors.Is(got, context.DeadlineExceeded) {
				t.Errorf("Cause: got %v, want DeadlineExceeded", got)
			}
			return ctx.Err()
		}, context.DeadlineExceeded, context.DeadlineExceeded},
		{"Err without waiting turns at the deadline", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			if err := ctx.Err(); err != nil {
				t.Errorf("Err before the deadline: %v", err)
			}
			time.Sleep(d)
			if ctx.Err() == nil {
				t.Error("Err nil at the deadline")
			}
			select {
			case <-ctx.Done():
			default:
				t.Error("Done not closed after Err reported the deadline")
			}
			return ctx.Err()
		}, context.DeadlineExceeded, context.DeadlineExceeded},
		{"parent cancellation reaches a waiting handler", func(t *testing.T, ctx context.Context, cancel context.CancelFunc) error {
			time.AfterFunc(d/5, cancel)
			<-ctx.Done()
			return ctx.Err()
		}, context.Canceled, context.Canceled},
		{"parent cancellation without waiting", func(t *testing.T, ctx context.Context, cancel context.CancelFunc) error {
			cancel()
			return ctx.Err()
		}, context.Canceled, context.Canceled},
		{"a child context ends at the deadline", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			<-child.Done()
			return child.Err()
		}, context.DeadlineExceeded, context.DeadlineExceeded},
		{"context.AfterFunc runs at the deadline", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			ran := make(chan time.Duration, 1)
			start := time.Now()
			context.AfterFunc(ctx, func() { ran <- time.Since(start) })
			if got := <-ran; got != d {
				t.Errorf("AfterFunc ran after %s, want %s", got, d)
			}
			return nil
		}, nil, context.DeadlineExceeded},
		{"deadline and values without a timer", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			dl, ok := ctx.Deadline()
			if want := time.Now().Add(d); !ok || !dl.Equal(want) {
				t.Errorf("Deadline: got %v %v, want %v true", dl, ok, want)
			}
			if got := ctx.Value(key{}); got != "v" {
				t.Errorf("Value: got %v, want the parent's", got)
			}
			return nil
		}, nil, context.Canceled},
		{"a handler that ignores the deadline runs to completion", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			time.Sleep(2 * d)
			return nil
		}, nil, context.DeadlineExceeded}, // asked after the deadline
		{"a child left running is canceled when the attempt returns", func(t *testing.T, ctx context.Context, _ context.CancelFunc) error {
			child, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			go func() {
				<-child.Done()
				if !errors.Is(child.Err(), context.Canceled) {
					t.Errorf("child: got %v, want Canceled", child.Err())
				}
			}()
			return nil
		}, nil, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
				defer cancel()
				inner, err := runTimeout(t, d, parent, func(ctx context.Context) error { return c.fn(t, ctx, cancel) })
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("attempt: got %v, want %v", err, c.wantErr)
				}
				if got := inner.Err(); !errors.Is(got, c.wantAfter) {
					t.Fatalf("after the attempt: Err got %v, want %v", got, c.wantAfter)
				}
				select {
				case <-inner.Done():
				default:
					t.Fatal("after the attempt: Done not closed")
				}
				time.Sleep(time.Hour) // any timer left would fire here
			})
		})
	}
}

// A parent deadline earlier than the timeout is the one reported and the
// one that ends the attempt.
func TestTimeoutEarlierParentDeadline(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		want, _ := parent.Deadline()
		_, err := runTimeout(t, time.Second, parent, func(ctx context.Context) error {
			if dl, _ := ctx.Deadline(); !dl.Equal(want) {
				t.Errorf("Deadline: got %v, want the parent's %v", dl, want)
			}
			start := time.Now()
			<-ctx.Done()
			if got := time.Since(start); got != 10*time.Millisecond {
				t.Errorf("ended after %s, want 10ms", got)
			}
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
	})
}

// Many attempts that wait concurrently on their contexts, with and without
// a parent that is canceled, leave no goroutine or timer behind (goleak in
// TestMain; synctest fails on a goroutine blocked for ever).
func TestTimeoutConcurrentAttempts(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		to, err := middleware.NewTimeout(20 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		h := to.Middleware(func(m *message.Message) ([]*message.Message, error) {
			ctx := m.Context()
			done := make(chan struct{})
			go func() { defer close(done); <-ctx.Done() }()
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(len(m.UUID)) * time.Millisecond):
			}
			<-done
			return nil, ctx.Err()
		})
		errs := make(chan error, 64)
		for i := range 64 {
			go func() {
				parent, cancel := context.WithCancel(context.Background())
				defer cancel()
				if i%3 == 0 {
					time.AfterFunc(5*time.Millisecond, cancel)
				}
				msg := message.NewMessage(string(make([]byte, i)), nil)
				msg.SetContext(parent)
				_, err := h(msg)
				errs <- err
			}()
		}
		for range 64 {
			if err := <-errs; err == nil {
				t.Error("an attempt ended with no context error")
			}
		}
	})
}
