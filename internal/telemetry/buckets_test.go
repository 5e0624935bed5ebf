package telemetry_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/levee-dev/levee/internal/telemetry"
)

// The layouts keep the promises buckets.go and docs/TELEMETRY.md make:
// their range, their count, increasing boundaries at most 2.5 apart, and a
// new slice per call.
func TestBucketLayouts(t *testing.T) {
	tests := []struct {
		name        string
		get         func() []float64
		first, last float64
		count       int
	}{
		{"WorkBuckets", telemetry.WorkBuckets, 0.001, 60, 15},
		{"WaitBuckets", telemetry.WaitBuckets, 0.0001, 60, 18},
		{"PauseBuckets", telemetry.PauseBuckets, 0.01, 600, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.get()
			if len(b) != tt.count || b[0] != tt.first || b[len(b)-1] != tt.last {
				t.Fatalf("got %d boundaries %v … %v, want %d from %v to %v", len(b), b[0], b[len(b)-1], tt.count, tt.first, tt.last)
			}
			for i := 1; i < len(b); i++ {
				if r := b[i] / b[i-1]; r <= 1 || r > 2.5+1e-9 {
					t.Errorf("boundaries %v and %v: ratio %.3g, want in (1, 2.5]", b[i-1], b[i], r)
				}
			}
			b[0] = -1
			if tt.get()[0] != tt.first {
				t.Errorf("%s shares its slice between calls", tt.name)
			}
		})
	}
}

// docs/TELEMETRY.md's layout table states each layout's first and last
// boundaries and their count; they must be the code's.
func TestBucketLayoutsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() []float64{
		"WorkBuckets": telemetry.WorkBuckets, "WaitBuckets": telemetry.WaitBuckets, "PauseBuckets": telemetry.PauseBuckets,
	} {
		row := regexp.MustCompile("(?m)^ *\\| `" + name + "` \\| ([^|]*) \\|").FindSubmatch(raw)
		if row == nil {
			t.Errorf("docs/TELEMETRY.md has no row for %s", name)
			continue
		}
		b := get()
		cell := string(row[1])
		first := strconv.FormatFloat(b[0], 'g', -1, 64)
		last := strconv.FormatFloat(b[len(b)-1], 'g', -1, 64)
		if !strings.HasPrefix(cell, first+", ") || !strings.HasSuffix(cell, fmt.Sprintf("%s (%d)", last, len(b))) {
			t.Errorf("docs/TELEMETRY.md row %s = %q; want it to start with %s and end with %s (%d)", name, cell, first, last, len(b))
		}
	}
}
