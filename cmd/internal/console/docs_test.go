package console

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestConsoleDocStatesTheDefaults: the numbers docs/CONSOLE.md states are
// the code's.
func TestConsoleDocStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../../docs/CONSOLE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	waves := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(dlqops.DefaultCanaryWaves())), ", "), "[]")
	for _, want := range []string{
		"1, 2, 5, 20, 50, 100 letters by default and then 100 at a time",
		fmt.Sprintf("within `wait` (default %s)", shortDuration(dlqops.DefaultCanaryWait)),
		fmt.Sprintf("(every %s)", shortDuration(dlqops.DefaultCanaryPoll)),
		fmt.Sprintf("%d a page with a keyset cursor", dlqops.DefaultPageSize),
		fmt.Sprintf("the %d newest letters", groupSample),
		fmt.Sprintf("a %d-hour trend", trendHours),
		fmt.Sprintf("largest first, %d a page", groupsPerPage),
		"(default 0: the first failure halts)",
		fmt.Sprintf("is at most %d MiB", maxForm>>20),
		fmt.Sprintf("the letters it replays, up to %d,", maxLineage),
		fmt.Sprintf("among the first %s letters of its topic since its replay", strings.Replace(fmt.Sprint(descendantScan), "000", ",000", 1)),
		fmt.Sprintf("after %d failed logins (`login_throttle.burst`)", DefaultLoginBurst),
		fmt.Sprintf("client earns %d more a minute (`per_minute`)", DefaultLoginPerMinute),
		fmt.Sprintf("login_throttle: {burst: %d, per_minute: %d}", DefaultLoginBurst, DefaultLoginPerMinute),
		fmt.Sprintf("over %d MiB, its first %d MiB as text or its first %d KiB as hex", maxShownPayload>>20, maxShownPayload>>20, maxShownPayload/4>>10),
		fmt.Sprintf("within the %d MiB a form may hold", maxForm>>20),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/CONSOLE.md does not say %q", want)
		}
	}
	if waves != "1, 2, 5, 20, 50, 100" {
		t.Errorf("default waves are %s; update docs/CONSOLE.md", waves)
	}
}

func shortDuration(d fmt.Stringer) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "m") || strings.HasSuffix(s, "h") {
		return s
	}
	return d.String()
}
