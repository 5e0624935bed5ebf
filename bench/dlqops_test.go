package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// dlqopsPGURL is the benchmark database (internal/brokertest).
func dlqopsPGURL() string { return brokertest.PostgresURL() }

// dlqopsStore opens a PostgreSQL store in a fresh schema, dropped at the
// end; it skips the benchmark when the server is unreachable.
func dlqopsStore(b *testing.B, opts ...pgstore.Option) *pgstore.Store {
	b.Helper()
	schema := brokertest.Name("levee_bench")
	ctx := context.Background()
	s, err := pgstore.Open(ctx, dlqopsPGURL(), append([]pgstore.Option{pgstore.WithSchema(schema),
		pgstore.WithDialTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		b.Skipf("postgres unreachable: %v", err)
	}
	b.Cleanup(func() {
		_, _ = s.Pool().Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
		_ = s.Close()
	})
	return s
}

// dlqopsLetter is a dead letter as dlq.Retrier writes it (about 600 bytes
// of metadata, a 200-byte payload).
func dlqopsLetter(i int, at time.Time) *message.Message {
	id := fmt.Sprintf("bench-%012d", i)
	m := message.NewMessage(id, []byte(fmt.Sprintf(`{"order":"%s","lines":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"customer":"c-%d","note":"%0120d"}`, id, i%977, 0)))
	errMsg := fmt.Sprintf("inventory: sku B-7 unavailable in warehouse %d", i%7)
	m.Metadata = message.Metadata{
		dlq.KeyOriginalTopic: fmt.Sprintf("orders.%d", i%10), dlq.KeyHandler: fmt.Sprintf("handler-%d", i%20),
		dlq.KeyError: errMsg, dlq.KeyErrorType: "*inventory.Error", dlq.KeyErrorClass: "permanent",
		dlq.KeyFingerprint: dlq.Fingerprint("*inventory.Error", fmt.Sprintf("group %d", i%50)),
		dlq.KeyAttempts:    "5", dlq.KeyFirstFailureAt: dlq.FormatTime(at), dlq.KeyLastFailureAt: dlq.FormatTime(at),
		dlq.KeyOriginalUUID: id, dlq.KeyDLQTopic: "orders.dlq", dlq.KeyReplayCount: "0",
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	return m
}

// BenchmarkDLQOpsIngestPostgres measures the Monitor's ingest into
// PostgreSQL, one op per dead letter: "single-row" is one INSERT per
// message (Monitor.Handle, as a router delivers them one by one),
// "batch-N" hands N messages to Monitor.Record, one multi-row INSERT ... ON
// CONFLICT DO NOTHING. "memory" is the in-memory store for reference.
func BenchmarkDLQOpsIngestPostgres(b *testing.B) {
	dlqopsIngest(b, "single-row", func(b *testing.B) dlqops.Store { return dlqopsStore(b) })
}

// dlqopsIngest runs the ingest benchmark against the stores open returns:
// the in-memory store ("memory"), one letter per call (single), then
// batches of 10, 100 and 1,000 per Monitor.Record call.
func dlqopsIngest(b *testing.B, single string, open func(*testing.B) dlqops.Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	run := func(b *testing.B, s dlqops.Store, batch int) {
		mon, err := dlqops.NewMonitor(s, dlqops.WithMonitorBatchRows(1))
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]*message.Message, b.N)
		for i := range msgs {
			msgs[i] = dlqopsLetter(i, at.Add(time.Duration(i)*time.Millisecond))
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i += batch {
			end := min(i+batch, b.N)
			if batch == 1 {
				err = mon.Handle(msgs[i])
			} else {
				err = mon.Record(ctx, "orders.dlq", msgs[i:end]...)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	b.Run("memory", func(b *testing.B) { run(b, dlqops.NewMemStore(), 1) })
	b.Run(single, func(b *testing.B) { run(b, open(b), 1) })
	for _, n := range []int{10, 100, 1000} {
		b.Run("batch-"+strconv.Itoa(n), func(b *testing.B) { run(b, open(b), n) })
	}
}

// BenchmarkDLQOpsIngestConcurrent measures Monitor.Handle as a router with
// transport concurrency 32 calls it (32 dead letters in flight), with the
// Monitor's group commit (concurrent calls share one multi-row INSERT) and
// without it (WithMonitorBatchRows(1): one INSERT per letter).
func BenchmarkDLQOpsIngestConcurrent(b *testing.B) {
	dlqopsIngestConcurrent(b, "single-row", func(b *testing.B) dlqops.Store { return dlqopsStore(b) })
}

// dlqopsIngestConcurrent runs the concurrent ingest benchmark against the
// stores open returns, with group commit and with one write per letter
// (named single).
func dlqopsIngestConcurrent(b *testing.B, single string, open func(*testing.B) dlqops.Store) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		rows int
	}{{"group-commit", dlqops.DefaultMonitorBatchRows}, {single, 1}} {
		b.Run(c.name, func(b *testing.B) {
			mon, err := dlqops.NewMonitor(open(b), dlqops.WithMonitorBatchRows(c.rows))
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if err := mon.Handle(dlqopsLetter(i, at.Add(time.Duration(i)*time.Millisecond))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// dlqopsRows is the size of the group-query table: 1,000,000 with
// LEVEE_BENCH_DLQ_ROWS unset, 100,000 under -short.
func dlqopsRows() int {
	if v, err := strconv.Atoi(os.Getenv("LEVEE_BENCH_DLQ_ROWS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// BenchmarkDLQOpsGroupQuery measures Store.Groups (by fingerprint, with the
// window count and sample error) and the other operator queries over a
// table of dlqopsRows dead letters (50 groups, 10 topics, 20 handlers, 30
// days), generated server-side with generate_series.
func BenchmarkDLQOpsGroupQuery(b *testing.B) {
	s := dlqopsStore(b)
	ctx := context.Background()
	rows := dlqopsRows()
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	q := `INSERT INTO ` + schemaOf(s) + `.dead_letters (id, uuid, original_uuid, dlq_topic, original_topic, handler,
		fingerprint, error_class, error_type, error, attempts, replay_count, failed_at, received_at, metadata, payload, status)
	SELECT 'g-' || i, 'g-' || i, 'g-' || i, 'orders.dlq', 'orders.' || (i % 10), 'handler-' || (i % 20),
		lpad(to_hex(i % 50), 16, '0'), 'permanent', '*inventory.Error', 'inventory: sku unavailable in warehouse ' || (i % 7),
		5, 0, $1::timestamptz + (i % 2592000) * interval '1 second', $1::timestamptz, '\x7b7d'::bytea,
		convert_to('{"order":"' || i || '"}', 'UTF8'),
		CASE WHEN i % 10 = 0 THEN 'replayed' ELSE 'new' END
	FROM generate_series(1, $2) AS i`
	if _, err := s.Pool().Exec(ctx, q, base, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `ANALYZE `+schemaOf(s)+`.dead_letters`); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d dead letters in %s", rows, time.Since(start).Round(time.Millisecond))
	window := base.Add(29 * 24 * time.Hour)
	cases := []struct {
		name string
		fn   func() (int, error)
	}{
		{"groups-by-fingerprint", func() (int, error) {
			g, err := s.Groups(ctx, dlqops.GroupQuery{WindowStart: window})
			return len(g), err
		}},
		{"groups-by-topic", func() (int, error) {
			g, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByTopic, WindowStart: window})
			return len(g), err
		}},
		{"groups-one-topic", func() (int, error) {
			g, err := s.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Topic: "orders.3"}, WindowStart: window})
			return len(g), err
		}},
		{"list-group-limit-100", func() (int, error) {
			l, err := s.List(ctx, dlqops.Filter{Group: "0000000000000007", Limit: 100})
			return len(l), err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, err := c.fn()
				if err != nil || n == 0 {
					b.Fatalf("%d, %v", n, err)
				}
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// schemaOf returns the benchmark store's schema (the one dlqopsStore made).
func schemaOf(s *pgstore.Store) string { return s.Schema() }
