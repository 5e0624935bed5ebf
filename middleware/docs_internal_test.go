package middleware

import (
	"os"
	"strings"
	"testing"
)

// The docs state how deep a Stack must be to make room on the goroutine
// stack; this keeps them true.
func TestDocsStateStackRoomMinLayers(t *testing.T) {
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
	want := words[stackRoomMinLayers] + " or more layers"
	for _, f := range []string{"../docs/ARCHITECTURE.md", "../docs/BENCHMARKS.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(text, want) {
			t.Errorf("%s does not say %q (stackRoomMinLayers is %d)", f, want, stackRoomMinLayers)
		}
	}
}
