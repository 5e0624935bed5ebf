package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// The seeded shape: 200 failure groups of skewed sizes over 20 topics and
// 30 handlers, four classes, a week of failure times, 10% replayed and 5%
// archived, a JSON payload of about 150 bytes and eight metadata keys.
const (
	groups   = 200
	topics   = 20
	handlers = 30
	week     = 7 * 24 * time.Hour
)

var classes = []string{"permanent", "exhausted", "validation", "panic"}

// GroupKey is the fingerprint of seeded group g.
func groupKey(g int) string { return fmt.Sprintf("%016x", uint64(g)*0x9e3779b97f4a7c15) }

// letter returns seeded letter i.
func letter(r *rand.Rand, i int, now time.Time) dlqops.Record {
	g := int(float64(groups) * r.Float64() * r.Float64()) // skewed: small groups are many
	topic := fmt.Sprintf("topic-%02d", g%topics)
	handler := fmt.Sprintf("handler-%02d", g%handlers)
	class := classes[g%len(classes)]
	errText := fmt.Sprintf("group %d: downstream %s rejected order %d: status %d", g, handler, i, 500+g%4)
	at := now.Add(-time.Duration(r.Int64N(int64(week)))).Truncate(time.Microsecond)
	id := fmt.Sprintf("dl-%032x", uint64(i)*0x9e3779b97f4a7c15)
	st := dlqops.StatusNew
	switch x := r.IntN(100); {
	case x < 10:
		st = dlqops.StatusReplayed
	case x < 15:
		st = dlqops.StatusArchived
	}
	payload, _ := json.Marshal(map[string]any{"order_id": fmt.Sprintf("o-%d", i), "customer": fmt.Sprintf("c-%d", i%9973),
		"items": []map[string]any{{"sku": "A-1", "qty": 1 + i%5}}, "total": float64(i%10000) / 100})
	return dlqops.Record{ID: id, UUID: fmt.Sprintf("u-%d", i), OriginalUUID: fmt.Sprintf("u-%d", i),
		DLQTopic: topic + ".dlq", OriginalTopic: topic, Handler: handler, Fingerprint: groupKey(g),
		ErrorClass: class, ErrorType: "*errors.errorString", Error: errText, Attempts: 3, FailedAt: at, ReceivedAt: at,
		Metadata: map[string]string{dlq.KeyOriginalTopic: topic, dlq.KeyHandler: handler, dlq.KeyError: errText,
			dlq.KeyErrorClass: class, dlq.KeyFingerprint: groupKey(g), dlq.KeyAttempts: "3",
			dlq.KeyLastFailureAt: dlq.FormatTime(at), "traceparent": fmt.Sprintf("00-%032x-%016x-01", uint64(i)+1, uint64(i)+1)},
		Payload: payload, Status: st}
}

// seedStore seeds n letters in batches of 10,000, two batches at a time.
func seedStore(ctx context.Context, seed func(context.Context, []dlqops.Record) error, n int, now time.Time) error {
	const batch = 10000
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, 2)
	for from := 0; from < n; from += batch {
		to := min(n, from+batch)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := rand.New(rand.NewPCG(uint64(from), 7))
			letters := make([]dlqops.Record, 0, to-from)
			for i := from; i < to; i++ {
				letters = append(letters, letter(r, i, now))
			}
			if err := seed(ctx, letters); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// copyLetters seeds PostgreSQL with COPY, bypassing Add's INSERTs.
func copyLetters(ctx context.Context, s *pgstore.Store, letters []dlqops.Record) error {
	rows := make([][]any, len(letters))
	for i, dl := range letters {
		md, err := json.Marshal(dl.Metadata)
		if err != nil {
			return err
		}
		rows[i] = []any{dl.ID, dl.UUID, dl.OriginalUUID, dl.DLQTopic, dl.OriginalTopic, dl.Handler, dl.Fingerprint,
			dl.ErrorClass, dl.ErrorType, dl.Error, dl.Attempts, dl.FailedAt, dl.ReceivedAt, md, dl.Payload, string(dl.Status)}
	}
	_, err := s.Pool().CopyFrom(ctx, pgx.Identifier{unquote(s.Schema()), "dead_letters"},
		[]string{"id", "uuid", "original_uuid", "dlq_topic", "original_topic", "handler", "fingerprint", "error_class",
			"error_type", "error", "attempts", "failed_at", "received_at", "metadata", "payload", "status"},
		pgx.CopyFromRows(rows))
	return err
}

// unquote undoes pgx's identifier quoting of a plain schema name.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
