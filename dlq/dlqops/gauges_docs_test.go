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

// TestOperationsStatesTheDefaults: docs/OPERATIONS.md, the page of the
// person on call, states the defaults it names as the code has them: the
// gauges' cache, window and largest groups kept, the monitor's redelivery
// after a store failure and its group commit, and the replay's lease,
// rate and max replays.
func TestOperationsStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("(cached %s s)", strings.TrimSuffix(dlqops.DefaultGaugeMinInterval.String(), "s")),
		fmt.Sprintf("in the last window (%s min default)", strings.TrimSuffix(dlqops.DefaultGaugeWindow.String(), "m0s")),
		fmt.Sprintf("Beyond the %d largest groups, the rest are summed as `group=\"other\"`", dlqops.DefaultGaugeMaxGroups),
		fmt.Sprintf("the broker redelivers after %s s", strings.TrimSuffix(dlqops.DefaultMonitorRetryAfter.String(), "s")),
		fmt.Sprintf("(redelivery after %s s)", strings.TrimSuffix(dlqops.DefaultMonitorRetryAfter.String(), "s")),
		fmt.Sprintf("up to %d letters and %d MiB", dlqops.DefaultMonitorBatchRows, dlqops.MonitorBatchBytes>>20),
		fmt.Sprintf("plus a %d-minute lease", int(dlqops.DefaultReplayLease.Minutes())),
		fmt.Sprintf("after the lease (%d minutes)", int(dlqops.DefaultReplayLease.Minutes())),
		fmt.Sprintf("The default is %g/s", dlqops.DefaultReplayRate),
		fmt.Sprintf("`--max-replays` (default %d)", dlqops.DefaultMaxReplays),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/OPERATIONS.md does not say %q", want)
		}
	}
}
