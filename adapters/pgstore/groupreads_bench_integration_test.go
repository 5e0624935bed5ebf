//go:build integration

package pgstore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	dlqtest.BenchGroupReads(b, s)
}

// copyLetters seeds the store with COPY (the triggers count the letters
// once for the statement).
func copyLetters(b *testing.B, s *pgstore.Store, letters []dlqops.Record) {
	b.Helper()
	rows := make([][]any, len(letters))
	for i, dl := range letters {
		md, err := json.Marshal(dl.Metadata)
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = []any{dl.ID, dl.UUID, dl.OriginalUUID, dl.DLQTopic, dl.OriginalTopic, dl.Handler, dl.Fingerprint,
			dl.ErrorClass, dl.ErrorType, dl.Error, dl.Attempts, dl.FailedAt, dl.ReceivedAt, md, dl.Payload, string(dl.Status)}
	}
	_, err := s.Pool().CopyFrom(context.Background(), pgx.Identifier{strings.Trim(s.Schema(), `"`), "dead_letters"},
		[]string{"id", "uuid", "original_uuid", "dlq_topic", "original_topic", "handler", "fingerprint", "error_class",
			"error_type", "error", "attempts", "failed_at", "received_at", "metadata", "payload", "status"},
		pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(context.Background(), `ANALYZE `+s.Schema()+`.dead_letters`); err != nil {
		b.Fatal(err)
	}
}
