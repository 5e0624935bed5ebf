package lru

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLRU(t *testing.T) {
	m := New[string, int](3)
	for i := range 3 {
		m.Put(fmt.Sprint(i), i+1)
	}
	if _, ok := m.Get("0"); !ok { // touch 0: 1 is now least recently used
		t.Fatal("0 missing")
	}
	m.Put("3", 9)
	if _, ok := m.Get("1"); ok {
		t.Errorf("1 should have been evicted")
	}
	for _, k := range []string{"0", "2", "3"} {
		if _, ok := m.Get(k); !ok {
			t.Errorf("%s missing", k)
		}
	}
	m.Put("3", 10) // update in place
	if v, _ := m.Get("3"); v != 10 || m.Len() != 3 {
		t.Errorf("update: got %d, len %d; want 10, 3", v, m.Len())
	}
	m.Delete("3")
	m.Delete("missing")
	if m.Len() != 2 {
		t.Errorf("len after delete: got %d, want 2", m.Len())
	}
	off := New[string, int](0)
	off.Put("x", 1)
	if _, ok := off.Get("x"); ok || off.Len() != 0 {
		t.Errorf("a map of size 0 must keep nothing")
	}
}

func TestLRUConcurrent(t *testing.T) {
	m := New[int, int](64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := (g*1000 + i) % 100
				m.Put(k, i)
				m.Get(k)
				if i%3 == 0 {
					m.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	if n := m.Len(); n < 0 || n > 64 {
		t.Fatalf("len %d outside 0..64", n)
	}
}

func TestLRUExpiry(t *testing.T) {
	m := New[string, int](4)
	now := time.Now()
	m.PutUntil("soon", 1, now.Add(time.Hour))
	m.PutUntil("later", 2, now.Add(2*time.Hour))
	m.Put("never", 3)
	if _, ok := m.Get("soon"); !ok {
		t.Fatal("soon missing before its expiry")
	}
	if n := m.Sweep(now.Add(time.Hour-time.Nanosecond), 0); n != 0 || m.Len() != 3 {
		t.Fatalf("sweep before any expiry: removed %d, len %d; want 0, 3", n, m.Len())
	}
	if n := m.Sweep(now.Add(time.Hour), 0); n != 1 || m.Len() != 2 {
		t.Fatalf("sweep at the first expiry: removed %d, len %d; want 1, 2", n, m.Len())
	}
	if _, ok := m.Get("soon"); ok {
		t.Fatal("soon returned after its sweep")
	}
	// Storing a key again replaces its expiry.
	m.PutUntil("later", 4, now.Add(3*time.Hour))
	if n := m.Sweep(now.Add(2*time.Hour), 0); n != 0 {
		t.Fatalf("a replaced expiry was swept: removed %d", n)
	}
	// Sweep with an interval scans once per interval.
	if n := m.Sweep(now.Add(4*time.Hour), time.Minute); n != 1 {
		t.Fatalf("first rate-limited sweep: removed %d, want 1", n)
	}
	m.PutUntil("x", 5, now.Add(time.Hour))
	if n := m.Sweep(now.Add(4*time.Hour+time.Second), time.Minute); n != 0 || m.Len() != 2 {
		t.Fatalf("sweep within the interval: removed %d, len %d; want 0, 2", n, m.Len())
	}
	if n := m.Sweep(now.Add(4*time.Hour+time.Minute), time.Minute); n != 1 {
		t.Fatalf("sweep after the interval: removed %d, want 1", n)
	}
	if v, ok := m.Get("never"); !ok || v != 3 {
		t.Fatalf("an entry without expiry: got %d, %v", v, ok)
	}
}

// TestLRUGetExpired: Get drops an expired entry it finds (time.Now).
func TestLRUGetExpired(t *testing.T) {
	m := New[string, int](2)
	m.PutUntil("old", 1, time.Now().Add(-time.Second))
	if _, ok := m.Get("old"); ok {
		t.Fatal("expired entry returned")
	}
	if m.Len() != 0 {
		t.Fatalf("len after Get of an expired entry: got %d, want 0", m.Len())
	}
}
