//go:build integration

package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// BenchmarkGroupReads compares the group gauges and the prune preview
// reading every group ("old") with SumGroups ("new") over 200,000 letters
// in about 5,000 groups (dlqtest.ScaleLetters), seeded through Add (the
// store's batched scripts):
//
//	cd adapters && go test -tags integration -run '^$' -bench BenchmarkGroupReads -benchtime 10x ./redisstore/
func BenchmarkGroupReads(b *testing.B) {
	s := openStore(b, newPrefix(b), redisstore.WithTimeout(time.Minute))
	chunk := make([]dlqops.Record, 0, 5000)
	for dl := range dlqtest.ScaleLetters(200_000, 5_000) {
		if chunk = append(chunk, dl); len(chunk) == cap(chunk) {
			if _, err := s.Add(context.Background(), chunk...); err != nil {
				b.Fatal(err)
			}
			chunk = chunk[:0]
		}
	}
	dlqtest.BenchGroupReads(b, s)
}
