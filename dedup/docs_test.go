package dedup_test

import (
	"os"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dedup"
)

// TestDedupDocStatesTheDefaults: the defaults and counts docs/DEDUP.md
// states are the package's.
func TestDedupDocStatesTheDefaults(t *testing.T) {
	data, err := os.ReadFile("../docs/DEDUP.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(data)), " ")
	for _, want := range []string{
		"`window` (default " + short(dedup.DefaultWindow.String()) + ")",
		"`lease` (default " + dedup.DefaultLease.String() + ")",
		"lease: 1m # default " + dedup.DefaultLease.String(),
		"window: 24h # default " + short(dedup.DefaultWindow.String()),
		"busy_retry: " + dedup.DefaultBusyRetry.String(),
		"store_timeout: " + dedup.DefaultStoreTimeout.String(),
		"(`max_keys`, default 100,000)",
		"max_keys: 100000",
		"levee.dedup.duplicates", "levee.dedup.claims.waited", "levee.dedup.lease.expiries", "levee.dedup.store.errors",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/DEDUP.md lacks %q", want)
		}
	}
	if dedup.DefaultMaxKeys != 100_000 {
		t.Errorf("DefaultMaxKeys is %d; docs/DEDUP.md says 100,000", dedup.DefaultMaxKeys)
	}
}

// short turns "24h0m0s" into "24h", as the doc writes it.
func short(d string) string { return strings.TrimSuffix(strings.TrimSuffix(d, "0s"), "0m") }
