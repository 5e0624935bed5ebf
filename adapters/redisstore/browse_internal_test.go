package redisstore

import (
	"os"
	"strings"
	"testing"
)

// TestDocsStateThePageBudget: doc.go and docs/CONSOLE.md state the walk
// bound of a page.
func TestDocsStateThePageBudget(t *testing.T) {
	if pageBudget != 5000 {
		t.Fatalf("pageBudget is %d; update doc.go and docs/CONSOLE.md", pageBudget)
	}
	for file, want := range map[string]string{"doc.go": "(at most 5,000 a call)", "../../docs/CONSOLE.md": "at most 5,000 entries a request"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(string(b), "//", "")), " "), want) {
			t.Errorf("%s does not say %q", file, want)
		}
	}
}
