//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// BenchmarkAddCounters measures Add, the Monitor's per-letter write, with
// the group counters' triggers (migration 0005) and without them (the
// alternative: aggregate at read time), one letter and 100 letters a call.
func BenchmarkAddCounters(b *testing.B) {
	for _, counters := range []bool{true, false} {
		for _, batch := range []int{1, 100} {
			name := fmt.Sprintf("counters=%v/batch=%d", counters, batch)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				s := openStore(b, newSchema(b))
				if !counters {
					for _, tr := range []string{"levee_count_insert", "levee_count_delete", "levee_count_update"} {
						if _, err := s.Pool().Exec(ctx, `DROP TRIGGER `+tr+` ON `+s.Schema()+`.dead_letters`); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					letters := make([]dlqops.Record, batch)
					for i := range letters {
						letters[i] = dlqtest.Letter(fmt.Sprintf("b-%d", n), fmt.Sprintf("g%d", n%50), "orders", "ship", 0)
						n++
					}
					if _, err := s.Add(ctx, letters...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/letter")
			})
		}
	}
}
