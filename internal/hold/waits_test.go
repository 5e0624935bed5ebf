package hold

import (
	"context"
	"runtime"
	"testing"
	"time"
)

type valKey struct{}

func TestAccountReusedAndAdded(t *testing.T) {
	m := newMsg()
	AddWait(m.Context(), time.Second) // no account: nothing to add to
	w := Account(m)
	if w.Load() != 0 {
		t.Fatalf("new account holds %s", w.Load())
	}
	Start(m, time.Now(), time.Minute) // a layer wraps the context further
	AddWait(m.Context(), 300*time.Millisecond)
	AddWait(m.Context(), -time.Second) // ignored
	if w2 := Account(m); w2 != w {
		t.Fatal("a second Account made a new account instead of reusing the message's")
	}
	if got := w.Load(); got != 300*time.Millisecond {
		t.Fatalf("account holds %s, want 300ms", got)
	}
}

func TestAccountKeepsTheParentsContext(t *testing.T) {
	m := newMsg()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), valKey{}, "v"))
	m.SetContext(parent)
	w := Account(m)
	if w.Value(valKey{}) != "v" {
		t.Fatal("the account hid the parent's values")
	}
	before := runtime.NumGoroutine()
	child, cancelChild := context.WithCancel(m.Context())
	defer cancelChild()
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("a child of the account started a goroutine (%d -> %d)", before, n)
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("cancelling the parent did not reach a child of the account")
	}
	if w.Err() != context.Canceled {
		t.Fatalf("account's Err %v, want Canceled", w.Err())
	}
}
