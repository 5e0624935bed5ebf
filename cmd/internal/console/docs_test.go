package console

import (
	"fmt"
	"os"
	"strconv"
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
		fmt.Sprintf("(`rate`: %d/s by default from the console, 50/s from the command line's `--rate`)", DefaultCanaryRate),
		fmt.Sprintf("is at most %d MiB", maxForm>>20),
		fmt.Sprintf("the letters it replays, up to %d,", maxLineage),
		fmt.Sprintf("among the first %s letters of its topic since its replay", strings.Replace(fmt.Sprint(descendantScan), "000", ",000", 1)),
		fmt.Sprintf("after %d failed logins (`login_throttle.burst`)", DefaultLoginBurst),
		fmt.Sprintf("client earns %d more a minute (`per_minute`)", DefaultLoginPerMinute),
		fmt.Sprintf("login_throttle: {burst: %d, per_minute: %d}", DefaultLoginBurst, DefaultLoginPerMinute),
		fmt.Sprintf("over %d MiB, its first %d MiB as text or its first %d KiB as hex", maxShownPayload>>20, maxShownPayload>>20, maxShownPayload/4>>10),
		fmt.Sprintf("within the %d MiB a form may hold", maxForm>>20),
		fmt.Sprintf("stay held until their lease (%d minutes) ends", int(dlqops.DefaultReplayLease.Minutes())),
		fmt.Sprintf("asks the store for its %d groups and one more", groupsPerPage),
		fmt.Sprintf("The page number stops at %s (%s groups in)", thousands(maxGroupsPage), "a million"),
		fmt.Sprintf("### The groups page at %s groups", thousands(benchGroups)),
		fmt.Sprintf("With %s groups (%s letters: one a group, ten in every hundredth; %d topics, %d handlers)",
			thousands(benchGroups), thousands(benchLetters()), benchTopics, benchHandlers),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/CONSOLE.md does not say %q", want)
		}
	}
	if maxGroupsPage*groupsPerPage != 1_000_000 || benchBigEvery != 100 || benchBigLetters != 10 {
		t.Errorf("docs/CONSOLE.md says a million groups in, ten letters in every hundredth group; update it")
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

// The shape of BenchmarkGroupsPage (groups_bench_integration_test.go),
// which docs/CONSOLE.md states.
const (
	benchGroups     = 20_000
	benchBigEvery   = 100 // every hundredth group has benchBigLetters
	benchBigLetters = 10
	benchTopics     = 20
	benchHandlers   = 30
)

// benchLetters is how many letters BenchmarkGroupsPage seeds.
func benchLetters() int {
	big := (benchGroups + benchBigEvery - 1) / benchBigEvery
	return benchGroups - big + big*benchBigLetters
}

// thousands writes n with comma separators (20000: "20,000").
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
