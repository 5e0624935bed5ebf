package fleet

import "testing"

func TestCounterAccounts(t *testing.T) {
	var c counter
	c.add(21)
	n := 0
	for c.take() >= 0 {
		n++
	}
	if n != 21 || c.sum() != 0 {
		t.Fatalf("took %d, left %d; want 21 and 0", n, c.sum())
	}
	c.add(10)
	c.put()
	if got := c.drain(5); got != 5 || c.sum() != 6 {
		t.Fatalf("drained %d leaving %d; want 5 and 6", got, c.sum())
	}
	if got := c.drain(100); got != 6 || c.sum() != 0 {
		t.Fatalf("drained %d, want 6", got)
	}
}
