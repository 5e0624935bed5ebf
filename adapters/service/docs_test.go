package service_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters/service"
)

// TestDocsStateTheHoldFraction: the share of the ack deadline a service
// holds a message at most (HoldFraction) is the percentage the README,
// docs/BATCH.md and the package docs state.
func TestDocsStateTheHoldFraction(t *testing.T) {
	pct := strconv.FormatFloat(service.HoldFraction*100, 'f', -1, 64) + "%"
	for _, c := range []struct{ file, want string }{
		{"../../README.md", "(the demo passes " + pct + " of it)"},
		{"../../README.md", "than the max hold, " + pct + " of the transport's ack deadline"},
		{"../../docs/BATCH.md", "`Deps.MaxHold`, " + pct + " of the transport's ack deadline"},
		{"doc.go", "MaxHold, " + pct + " of the ack deadline"},
		{"../doc.go", "passes " + pct + " of it as MaxHold"},
	} {
		file, want := c.file, c.want
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "//", "")), " ")
		if !strings.Contains(text, want) {
			t.Errorf("%s does not say %q", file, want)
		}
	}
}
