package dlq_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
)

// The docs state the bounds of a letter cut down for its size and the
// least delay of one that cannot fit; this keeps them true.
func TestTooLargeBoundsDocumented(t *testing.T) {
	minutes := func(d time.Duration) string {
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	compact := fmt.Sprintf("cut to %d bytes", dlq.CompactErrorLength)
	core := fmt.Sprintf("cut to %d bytes", dlq.CoreErrorLength)
	least := "at least " + minutes(dlq.TooLargeRetryAfter)
	every := map[time.Duration]string{time.Minute: "every minute"}[dlq.TooLargeRetryAfter]
	for file, wants := range map[string][]string{
		"../docs/DLQ.md":        {compact + " (`dlq.CompactErrorLength`)", core + " (`dlq.CoreErrorLength`)", least + " (`dlq.TooLargeRetryAfter`"},
		"../README.md":          {compact, core},
		"../docs/TELEMETRY.md":  {least},
		"../docs/OPERATIONS.md": {every + " or more"},
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(raw)), " ")
		for _, want := range wants {
			if want == " or more" || !strings.Contains(text, want) {
				t.Errorf("%s does not say %q", file, want)
			}
		}
	}
}
