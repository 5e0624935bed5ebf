package ratelimit

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestPerKeyEvictionPassesABusySlowKey: at max_keys, a new key may replace
// a key at rest. Only the least recently used key was looked at, so one
// slow key there (an override of 1/min, still refilling) sent every new
// key to the shared fallback bucket, though the keys behind it were at
// rest: new customers were limited together instead of each on its own.
// A key at rest near the end of the list is dropped now.
func TestPerKeyEvictionPassesABusySlowKey(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(100, 1), WithMaxKeys(3),
			WithKeyOverride("bulk", 1.0/60, 1), // refills in a minute
			WithKeyOverride(FallbackKey, 0, 1)) // the fallback admits nothing here
		h := l.Middleware(noop)
		if got := admitted(t, h, []string{"bulk", "a", "b"}, 1); got["bulk"] != 1 || got["a"] != 1 || got["b"] != 1 {
			t.Fatalf("first messages: admitted %v, want one each", got)
		}
		time.Sleep(time.Second) // a and b are full again; bulk refills for a minute
		got := admitted(t, h, []string{"c", "d"}, 1)
		if got["c"] != 1 || got["d"] != 1 {
			t.Errorf("new keys c, d with a and b at rest: admitted %v, want one each (own buckets, not the fallback)", got)
		}
		if n := l.Keys(); n != 3 {
			t.Errorf("Keys() = %d, want max_keys 3", n)
		}
		// bulk was busy: it kept its bucket (and its debt).
		if got := admitted(t, h, []string{"bulk"}, 1); got["bulk"] != 0 {
			t.Errorf("bulk was admitted again within its minute: its busy bucket was dropped")
		}
	})
}

// TestDocsStateTheEvictionScan keeps the number docs/RATELIMIT.md and
// WithMaxKeys state equal to evictScan.
func TestDocsStateTheEvictionScan(t *testing.T) {
	for _, c := range []struct{ file, text string }{
		{"../docs/RATELIMIT.md", fmt.Sprintf("at rest among the %d least recently used is dropped", evictScan)},
		{"keyed.go", fmt.Sprintf("among the %d least recently used is dropped", evictScan)},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if doc := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "// ", "")), " "); !strings.Contains(doc, c.text) {
			t.Errorf("%s does not say %q", c.file, c.text)
		}
	}
}
