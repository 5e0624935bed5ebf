package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/brokertest"
)

// batchNopFunc is a batch func that does nothing: what remains is the
// batching machinery itself.
func batchNopFunc(context.Context, []*message.Message) error { return nil }

// batchDrive runs b.N deliveries through handle from workers goroutines
// (a transport delivering that many messages at once) and reports ns per
// message, messages/s, and the mean and p99 latency of one delivery.
//
// It also reports cpu-ns/msg, the process CPU time (user+system) per
// message: on a shared machine wall time includes other processes' load,
// CPU time does not. With latency false, no per-delivery timing is taken
// (it would dominate the machinery's own cost).
func batchDrive(b *testing.B, workers int, latency bool, handle func(*message.Message) error) {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := batchCPUTime()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := message.NewMessage(fmt.Sprintf("w%d", w), []byte(`{"sku":"apple","qty":1}`))
			for next.Add(1) <= int64(b.N) {
				var t0 time.Time
				if latency {
					t0 = time.Now()
				}
				if err := handle(msg); err != nil {
					failed.Add(1)
				}
				if latency {
					lat[w] = append(lat[w], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := batchCPUTime() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d deliveries failed", n)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	if len(all) > 0 {
		b.ReportMetric(float64(sum.Microseconds())/float64(len(all)), "µs-mean-latency")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "µs-p99-latency")
	}
}

// batchCPUTime returns the CPU time (user+system) this process used so far.
func batchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// batchChanBatcher is the batcher users hand-roll today: one collector
// goroutine reading requests from a channel, one reply channel per message.
type batchChanBatcher struct {
	in   chan batchChanReq
	done chan struct{}
}

type batchChanReq struct {
	msg   *message.Message
	reply chan error
}

func newBatchChanBatcher(fn batch.Func, size int, wait time.Duration) *batchChanBatcher {
	c := &batchChanBatcher{in: make(chan batchChanReq, size), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var reqs []batchChanReq
		var msgs []*message.Message
		timer := time.NewTimer(wait)
		timer.Stop()
		flush := func() {
			err := fn(context.Background(), msgs)
			for _, r := range reqs {
				r.reply <- err
			}
			reqs, msgs = reqs[:0], msgs[:0]
		}
		for {
			select {
			case r, ok := <-c.in:
				if !ok {
					if len(reqs) > 0 {
						flush()
					}
					return
				}
				if len(reqs) == 0 {
					timer.Reset(wait)
				}
				reqs = append(reqs, r)
				msgs = append(msgs, r.msg)
				if len(reqs) == size {
					timer.Stop()
					flush()
				}
			case <-timer.C:
				if len(reqs) > 0 {
					flush()
				}
			}
		}
	}()
	return c
}

func (c *batchChanBatcher) handle(msg *message.Message) error {
	r := batchChanReq{msg: msg, reply: make(chan error, 1)}
	c.in <- r
	return <-r.reply
}

func (c *batchChanBatcher) close() { close(c.in); <-c.done }

// BenchmarkBatchMachinery measures what batching costs per message when the
// batch func does nothing: Levee's Batcher against a direct call per
// message and against a hand-rolled channel batcher, with as many
// deliveries in flight as a batch holds (times max_in_flight).
func BenchmarkBatchMachinery(b *testing.B) {
	b.Run("direct-call-per-message", func(b *testing.B) {
		batchDrive(b, 200, false, func(m *message.Message) error {
			return batchNopFunc(context.Background(), []*message.Message{m})
		})
	})
	for _, size := range []int{10, 100} {
		workers := 2 * size
		b.Run(fmt.Sprintf("levee-batcher/size=%d", size), func(b *testing.B) {
			bt, err := batch.New(batchNopFunc, batch.WithMaxSize(size), batch.WithMaxInFlight(2), batch.WithMaxWait(50*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			batchDrive(b, workers, false, bt.NoPublishHandler)
		})
		b.Run(fmt.Sprintf("levee-batcher-cancelable-ctx/size=%d", size), func(b *testing.B) {
			// As a router delivers them: each message carries a context that
			// can end, so a waiting delivery must watch it too.
			bt, err := batch.New(batchNopFunc, batch.WithMaxSize(size), batch.WithMaxInFlight(2), batch.WithMaxWait(50*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			batchDrive(b, workers, false, func(m *message.Message) error {
				m.SetContext(ctx)
				return bt.NoPublishHandler(m)
			})
		})
		b.Run(fmt.Sprintf("chan-batcher/size=%d", size), func(b *testing.B) {
			cb := newBatchChanBatcher(batchNopFunc, size, 50*time.Millisecond)
			defer cb.close()
			batchDrive(b, workers, false, cb.handle)
		})
	}
}

// batchPostgresURL is the benchmark database (internal/brokertest).
func batchPostgresURL() string { return brokertest.PostgresURL() }

// batchPGPool is a fixed set of connections handed out through a channel
// (the pool a per-message handler would use).
type batchPGPool struct{ conns chan *pgx.Conn }

func batchOpenPool(tb testing.TB, url string, n int) *batchPGPool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p := &batchPGPool{conns: make(chan *pgx.Conn, n)}
	for range n {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			p.close()
			tb.Skipf("PostgreSQL unreachable at %s: %v", url, err)
		}
		p.conns <- c
	}
	tb.Cleanup(p.close)
	return p
}

func (p *batchPGPool) with(fn func(*pgx.Conn) error) error {
	c := <-p.conns
	defer func() { p.conns <- c }()
	return fn(c)
}

func (p *batchPGPool) close() {
	for {
		select {
		case c := <-p.conns:
			_ = c.Close(context.Background())
		default:
			return
		}
	}
}

const batchBenchTable = "levee_bench_batch_inventory"

func batchResetTable(tb testing.TB, p *batchPGPool, table string) {
	tb.Helper()
	err := p.with(func(c *pgx.Conn) error {
		_, err := c.Exec(context.Background(), fmt.Sprintf(
			`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (id bigserial PRIMARY KEY, message_uuid text NOT NULL, payload text NOT NULL)`, table))
		return err
	})
	if err != nil {
		tb.Fatalf("reset %s: %v", table, err)
	}
}

// BenchmarkBatchPostgres writes one row per message into real PostgreSQL:
// one INSERT per message (64 deliveries in flight over 16 connections)
// against Levee batches of 10, 100 and 1,000 rows written with
// BatchPostgresSink (multi-row INSERT) and BatchPostgresCopySink (COPY), max_in_flight
// 4 over 4 connections, max_wait 50ms. The table is a regular (logged)
// table: every statement commits durably. It reports messages/s and
// the mean and p99 latency of one delivery. Skipped when PostgreSQL is
// unreachable.
func BenchmarkBatchPostgres(b *testing.B) {
	url := batchPostgresURL()
	b.Run("insert-per-message", func(b *testing.B) {
		pool := batchOpenPool(b, url, 16)
		batchResetTable(b, pool, batchBenchTable)
		q := "INSERT INTO " + batchBenchTable + " (message_uuid, payload) VALUES ($1, $2)"
		batchDrive(b, 64, true, func(m *message.Message) error {
			return pool.with(func(c *pgx.Conn) error {
				_, err := c.Exec(context.Background(), q, m.UUID, string(m.Payload))
				return err
			})
		})
	})
	for _, mode := range []string{"insert", "copy"} {
		for _, size := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("levee-batch-%s/size=%d", mode, size), func(b *testing.B) {
				const inFlight = 4
				pool := batchOpenPool(b, url, inFlight)
				batchResetTable(b, pool, batchBenchTable)
				var fn batch.Func
				if mode == "insert" {
					sink := BatchPostgresSink(batchBenchTable)
					fn = func(ctx context.Context, msgs []*message.Message) error {
						return pool.with(func(c *pgx.Conn) error { return sink(ctx, c, msgs) })
					}
				} else {
					sink := BatchPostgresCopySink(batchBenchTable)
					fn = func(ctx context.Context, msgs []*message.Message) error {
						return pool.with(func(c *pgx.Conn) error { return sink(ctx, c, msgs) })
					}
				}
				bt, err := batch.New(fn, batch.WithMaxSize(size), batch.WithMaxInFlight(inFlight),
					batch.WithMaxWait(50*time.Millisecond), batch.WithConcurrency(inFlight*size))
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				batchDrive(b, max(64, inFlight*size), true, bt.NoPublishHandler)
			})
		}
	}
}
