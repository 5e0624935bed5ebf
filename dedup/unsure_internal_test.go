package dedup

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestUnsureIsBounded: a store outage that loses many claims' answers
// (each key a producer's identity) leaves at most maxUnsure remembered,
// the number docs/DEDUP.md states.
func TestUnsureIsBounded(t *testing.T) {
	var u unsure
	for i := range 3 * maxUnsure {
		u.add(fmt.Sprint("key-", i), uint64(i))
	}
	if n := len(u.m); n != maxUnsure || int(u.n.Load()) != maxUnsure {
		t.Errorf("remembered %d (count %d), want %d", n, u.n.Load(), maxUnsure)
	}
	if _, ok := u.take("key-0"); !ok {
		t.Errorf("the first unsure claim was forgotten")
	}
	b, err := os.ReadFile("../docs/DEDUP.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("(at most %d,%03d)", maxUnsure/1000, maxUnsure%1000)
	if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, want) {
		t.Errorf("docs/DEDUP.md does not say %q", want)
	}
}
