package breaker

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The docs state the drain's wake quantum; this keeps them true.
func TestDocsStateDrainWakeQuantum(t *testing.T) {
	want := fmt.Sprintf("at most once per %d ms", drainWakeQuantum.Milliseconds())
	for _, f := range []string{"../docs/ARCHITECTURE.md", "../docs/BENCHMARKS.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(text, want) {
			t.Errorf("%s does not say %q (drainWakeQuantum is %s)", f, want, drainWakeQuantum)
		}
	}
}

// TestBreakerDocStatesItsConstants: docs/BREAKER.md states the rolling
// window's bucket count and the drain baseline's time constant as the
// code has them.
func TestBreakerDocStatesItsConstants(t *testing.T) {
	b, err := os.ReadFile("../docs/BREAKER.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("# rolling window (%d buckets)", rollingBuckets),
		fmt.Sprintf("(a moving average with a %d s time constant)", int(throughputTau.Seconds())),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/BREAKER.md does not say %q", want)
		}
	}
}
