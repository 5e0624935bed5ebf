package dedup_test

import (
	"testing"

	"github.com/levee-dev/levee/dedup"
)

// TestStoreKeyNamespacesDoNotCollide: the namespace ends at the first "/",
// so no two (namespace, identity) pairs share a key; a plain namespace is
// written as it was.
func TestStoreKeyNamespacesDoNotCollide(t *testing.T) {
	pairs := [][2]string{{"a", "b/x"}, {"a/b", "x"}, {"a%2Fb", "x"}, {"a%", "x"}, {"a%25", "x"}, {"a", "%2Fx"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		k := dedup.StoreKey(p[0], p[1])
		if q, dup := seen[k]; dup {
			t.Errorf("StoreKey(%q, %q) = StoreKey(%q, %q) = %q", p[0], p[1], q[0], q[1], k)
		}
		seen[k] = p
	}
	if got := dedup.StoreKey("payments", "u-1"); got != "payments/u-1" {
		t.Errorf("a plain namespace: got %q, want payments/u-1 (the key it always had)", got)
	}
}
