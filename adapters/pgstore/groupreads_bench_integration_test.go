//go:build integration

package pgstore_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/adapters/internal/groupbench"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// BenchmarkGroupReads compares the group gauges and the prune preview
// reading every group ("old") with SumGroups ("new") over 200,000 letters
// in about 5,000 groups (dlqtest.ScaleLetters), seeded with COPY:
//
//	cd adapters && go test -tags integration -run '^$' -bench BenchmarkGroupReads -benchtime 10x ./pgstore/
func BenchmarkGroupReads(b *testing.B) {
	s := openStore(b, newSchema(b), pgstore.WithTimeout(time.Minute))
	copyLetters(b, s, dlqtest.ScaleLetters(200_000, 5_000))
	groupbench.Run(b, s)
}

// copyLetters seeds the store with one COPY (the triggers count the
// letters once for the statement), then analyzes the table.
func copyLetters(b *testing.B, s *pgstore.Store, letters iter.Seq[dlqops.Record]) {
	b.Helper()
	next, stop := iter.Pull(letters)
	defer stop()
	var rowErr error
	_, err := s.Pool().CopyFrom(context.Background(), pgx.Identifier{strings.Trim(s.Schema(), `"`), "dead_letters"},
		[]string{"id", "uuid", "original_uuid", "dlq_topic", "original_topic", "handler", "fingerprint", "error_class",
			"error_type", "error", "attempts", "failed_at", "received_at", "metadata", "payload", "status"},
		pgx.CopyFromFunc(func() ([]any, error) {
			dl, ok := next()
			if !ok {
				return nil, nil
			}
			md, err := json.Marshal(dl.Metadata)
			if err != nil {
				rowErr = err
				return nil, err
			}
			return []any{dl.ID, dl.UUID, dl.OriginalUUID, dl.DLQTopic, dl.OriginalTopic, dl.Handler, dl.Fingerprint,
				dl.ErrorClass, dl.ErrorType, dl.Error, dl.Attempts, dl.FailedAt, dl.ReceivedAt, md, dl.Payload, string(dl.Status)}, nil
		}))
	if err != nil || rowErr != nil {
		b.Fatal(err, rowErr)
	}
	if _, err := s.Pool().Exec(context.Background(), `ANALYZE `+s.Schema()+`.dead_letters, `+s.Schema()+`.group_totals`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGroupPageDepth compares the last page of 50 groups, without a
// filter, read with an Offset (the index walked to it) and after the
// cursor of the group before it, over 1,000,000 letters in 163,181
// groups (dlqtest.ScaleLetters), seeded with COPY; the first page is the
// reference. Both orders.
//
//	cd adapters && go test -tags integration -run '^$' -bench BenchmarkGroupPageDepth -benchtime 20x ./pgstore/
func BenchmarkGroupPageDepth(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, newSchema(b), pgstore.WithTimeout(5*time.Minute))
	copyLetters(b, s, dlqtest.ScaleLetters(1_000_000, 1_000_000))
	n, err := s.CountGroups(ctx, dlqops.GroupQuery{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d groups", n)
	for _, order := range []dlqops.GroupOrder{dlqops.GroupsByCount, dlqops.GroupsByNewest} {
		before, err := s.Groups(ctx, dlqops.GroupQuery{Order: order, Offset: n - 51, Limit: 1})
		if err != nil || len(before) != 1 {
			b.Fatal(len(before), err)
		}
		deep := dlqops.GroupQuery{Order: order, Offset: n - 50, Limit: 50}
		seek := dlqops.GroupQuery{Order: order, After: dlqops.CursorOf(before[0]), Limit: 50}
		a, err := s.Groups(ctx, deep)
		if err != nil {
			b.Fatal(err)
		}
		c, err := s.Groups(ctx, seek)
		if err != nil {
			b.Fatal(err)
		}
		if len(a) != 50 || len(c) != 50 {
			b.Fatalf("%s: offset page %d groups, cursor page %d", order, len(a), len(c))
		}
		for i := range a {
			if err := dlqtest.EqualGroup(c[i], a[i]); err != nil {
				b.Fatalf("%s: the pages differ: %v", order, err)
			}
		}
		for _, p := range []struct {
			name string
			q    dlqops.GroupQuery
		}{{"first", dlqops.GroupQuery{Order: order, Limit: 50}}, {"last/offset", deep}, {"last/after", seek}} {
			b.Run(string(order)+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Groups(ctx, p.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
