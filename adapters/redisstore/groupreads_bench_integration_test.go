//go:build integration

package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/redisstore"
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
	for chunk := range slices.Chunk(dlqtest.ScaleLetters(200_000, 5_000), 5000) {
		if _, err := s.Add(context.Background(), chunk...); err != nil {
			b.Fatal(err)
		}
	}
	dlqtest.BenchGroupReads(b, s)
}
