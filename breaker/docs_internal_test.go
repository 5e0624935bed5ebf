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
