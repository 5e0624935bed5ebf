package dlqops_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestGaugeDocStatesTheDefaults: docs/TELEMETRY.md states the group
// gauges' bounds (the number of group series above all) as the code has
// them.
func TestGaugeDocStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("Beyond `WithGaugeMaxGroups` (default %d) groups, the rest are summed under `group=\"other\"`", dlqops.DefaultGaugeMaxGroups),
		fmt.Sprintf("`WithGaugeMinInterval`, default %s", dlqops.DefaultGaugeMinInterval),
		fmt.Sprintf("(`WithGaugeWindow`, default %s)", strings.TrimSuffix(dlqops.DefaultGaugeWindow.String(), "0s")),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/TELEMETRY.md does not say %q", want)
		}
	}
}
