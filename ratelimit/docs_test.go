package ratelimit_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/levee-dev/levee/ratelimit"
)

// TestDocsStateTheBounds keeps the bounds docs/RATELIMIT.md, FLEET.md and
// TELEMETRY.md state for per-key limits equal to the code's.
func TestDocsStateTheBounds(t *testing.T) {
	for _, c := range []struct{ file, text string }{
		{"../docs/RATELIMIT.md", fmt.Sprintf("max_keys: %d # default", ratelimit.DefaultMaxKeys)},
		{"../docs/RATELIMIT.md", "idle: " + strings.TrimSuffix(ratelimit.DefaultKeyIdle.String(), "0s") + " # default"},
		{"../docs/RATELIMIT.md", fmt.Sprintf("a value longer than %d bytes", ratelimit.MaxKeyLen)},
		{"../docs/TELEMETRY.md", fmt.Sprintf("`invalid` (key longer than %d bytes)", ratelimit.MaxKeyLen)},
		{"../docs/FLEET.md", fmt.Sprintf("A value longer than %d bytes uses the fallback key", ratelimit.MaxKeyLen)},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, c.text) {
			t.Errorf("%s does not say %q", c.file, c.text)
		}
	}
}
