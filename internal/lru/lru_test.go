package lru

import (
	"fmt"
	"sync"
	"testing"
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
