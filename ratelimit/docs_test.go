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

// TestDocsDrainIsTheBreakers: the breaker's drain ramp is a bucket of the
// breaker's own; it never moves a Limiter's rate or the
// levee.ratelimit.limit gauge. The docs said the ramp drove a *Limiter
// with SetRate and that the gauge followed it, so an operator watched the
// gauge during a drain and saw nothing.
func TestDocsDrainIsTheBreakers(t *testing.T) {
	for _, c := range []struct {
		file      string
		want, not []string
	}{
		{"../docs/RATELIMIT.md", []string{"The drain never moves `levee.ratelimit.limit`", "`levee.breaker.drain.rate`"},
			[]string{"drives a `*ratelimit.Limiter`", "(or the breaker)", "adaptive or drained limit"}},
		{"../docs/TELEMETRY.md", []string{"the breaker's drain ramp is its own bucket"},
			[]string{"follows `SetRate`, the breaker's drain ramp"}},
		{"doc.go", []string{"the drain never moves a Limiter's rate"}, []string{"drain ramp drives a *Limiter"}},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		doc := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "// ", "")), " ")
		for _, w := range c.want {
			if !strings.Contains(doc, w) {
				t.Errorf("%s does not say %q", c.file, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(doc, n) {
				t.Errorf("%s still says %q", c.file, n)
			}
		}
	}
}
