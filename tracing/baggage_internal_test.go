package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/baggage"
)

// members joins n baggage members made by f from their index.
func members(n int, f string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(f, i)
	}
	return strings.Join(parts, ",")
}

// TestHostileBaggageCostIsBounded: a producer's baggage of 8 KiB of
// empty members ("=,=,…", 4,000 of them) cost the OTel parser an error
// per member: 8,020 allocations and about a millisecond per delivery,
// 16,037 with a rejected traceparent (the value is parsed twice). Members
// past the 128th are not read now, so it costs about what the largest
// valid baggage does, and what the parser keeps of a valid baggage is
// unchanged.
func TestHostileBaggageCostIsBounded(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	p := DefaultPropagator()
	hostile := strings.Repeat("=,", 4000)
	for name, md := range map[string]message.Metadata{
		"valid traceparent":    {KeyTraceparent: tp, KeyBaggage: hostile},
		"rejected traceparent": {KeyTraceparent: "00-zz", KeyBaggage: hostile},
		"no traceparent":       {KeyBaggage: hostile},
	} {
		allocs := testing.AllocsPerRun(20, func() { _, _ = extract(context.Background(), p, md, true) })
		if allocs > 1000 {
			t.Errorf("%s: extracting 8 KiB of empty baggage members took %.0f allocations, want at most 1,000", name, allocs)
		}
	}
	for name, c := range map[string]struct {
		bag  string
		want int // members kept
	}{
		"64 members":                          {members(64, "k%d=v"), 64},
		"1,000 members":                       {members(1000, "key%d=val")[:8000], 64},
		"over 8192 bytes":                     {members(2000, "k%d=v"), 0},
		"64 valid after 64 invalid":           {strings.Repeat("=,", 64) + members(64, "k%d=v"), 64},
		"valid ones past the 128th member":    {strings.Repeat("=,", 128) + members(10, "k%d=v"), 0},
		"the 128th member is valid, no comma": {strings.Repeat("=,", 127) + "k=v", 1},
	} {
		want, _ := baggage.Parse(c.bag)
		ctx, _ := extract(context.Background(), p, message.Metadata{KeyTraceparent: tp, KeyBaggage: c.bag}, true)
		got := baggage.FromContext(ctx)
		if got.Len() != c.want {
			t.Errorf("%s: %d members kept, want %d", name, got.Len(), c.want)
		}
		for _, m := range want.Members() {
			if c.want > 0 && got.Member(m.Key()).Value() != m.Value() {
				t.Errorf("%s: %s=%q not kept; the parser on the whole value keeps it", name, m.Key(), m.Value())
			}
		}
	}
	doc, err := os.ReadFile("../docs/TRACING.md")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("members past the %dth are not read", maxBaggageMembers); !strings.Contains(strings.Join(strings.Fields(string(doc)), " "), s) {
		t.Errorf("docs/TRACING.md does not say %q", s)
	}
}
