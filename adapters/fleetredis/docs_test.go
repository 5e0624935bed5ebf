package fleetredis_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetDocStatesTheDefaults: every default and bound docs/FLEET.md
// states is the one the code uses.
func TestFleetDocStatesTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../docs/FLEET.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	period := fleet.DefaultPeriod
	breakerDoc, err := os.ReadFile("../../docs/BREAKER.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "outcome counts published every " + ms(breaker.DefaultFleetReportEvery); !strings.Contains(strings.Join(strings.Fields(string(breakerDoc)), " "), want) {
		t.Errorf("docs/BREAKER.md does not say %q", want)
	}
	for _, want := range []string{
		"lease: " + period.String() + " # default lease period",
		"store_timeout: " + fleet.DefaultStoreTimeout.String() + " # default",
		"`store_timeout` (" + ms(fleet.DefaultStoreTimeout) + " by default)",
		fmt.Sprintf("(rate × `lease`, %d tokens at 200/s with the default %s)", int(200*period.Seconds()), ms(period)),
		fmt.Sprintf("(%s of the fleet's rate by default)", ms(period)),
		fmt.Sprintf("after %d lease periods (%s)", fleet.MemberTTLPeriods, fleet.MemberTTLPeriods*period),
		fmt.Sprintf("%s lease periods after its last lease", map[int]string{2: "Two"}[fleet.IdlePeriods]),
		fmt.Sprintf("no sooner than half a lease period: at most %d round trips per second per replica",
			int(time.Second/(period/fleet.ShortSpacingDiv))),
		fmt.Sprintf("never more than %d per second (one per quarter lease period)", int(time.Second/(period/fleet.MinSpacingDiv))),
		fmt.Sprintf("`max_keys` keys (default %d", ratelimit.DefaultFleetMaxKeys),
		fmt.Sprintf("longer than %d bytes", ratelimit.MaxKeyLen),
		"at most rate × window + burst + one lease per replica",
		fmt.Sprintf("whatever the limit's key (1 to %d bytes)", fleetredis.MaxKeyLen),
		"report_every: " + breaker.DefaultFleetReportEvery.String() + " # default",
		"probe_ttl: " + breaker.DefaultFleetProbeTTL.String() + " # default",
		"window: " + breaker.DefaultFleetWindow.String() + " # default",
		"open_for: " + breaker.DefaultFleetOpenFor.String() + " # default",
		fmt.Sprintf("min_requests: %d # default", breaker.DefaultFleetMinRequests),
		fmt.Sprintf("failure_ratio: %.0f%% # default", 100*breaker.DefaultFleetRatio),
		fmt.Sprintf("(%s + about 1 ms by default", ms(breaker.DefaultFleetReportEvery)),
		"`" + fleet.MetricRoundTrips + "`", "`" + fleet.MetricRoundTrip + "`", "`" + fleet.MetricLeased + "`",
		"`" + fleet.MetricFallbacks + "`", "`" + fleet.MetricDegraded + "`", "`" + fleet.MetricState + "`",
		// the fleet gauge's enum is the local breaker's, which
		// breaker's TestStateGaugesShareOneEnum checks against what both
		// gauges report (not the store's fleet.State numbering)
		"in the enum of `levee.breaker.state`: 0 closed, 1 half-open, 2 open, 3 draining",
		"prefix: " + fleetredis.DefaultPrefix + " # default",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/FLEET.md does not say %q", want)
		}
	}
}

// TestLeaseKeyFitsEveryPerKeyKey: the store accepts the longest key a
// per-key fleet limit leases under (the limit's key, ":k:", the message's
// key), so no accepted message key meets a store error.
func TestLeaseKeyFitsEveryPerKeyKey(t *testing.T) {
	if longest := fleetredis.MaxKeyLen + len(":k:") + ratelimit.MaxKeyLen; longest > fleetredis.MaxLeaseKeyLen {
		t.Errorf("a per-key lease key is up to %d bytes, the store accepts %d", longest, fleetredis.MaxLeaseKeyLen)
	}
}
