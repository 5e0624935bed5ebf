package main

// The Go blocks of the README and docs/, each verbatim in a function that
// declares what the block takes from around it, so that the compiler
// checks them against the current API: TestDocsGoBlocksCompile fails when a
// block is not found here as written (a line "..." in a block is a gap).
// None of these functions runs.

//lint:file-ignore U1000 the snippets are compiled, not called
//lint:file-ignore SA4006 the snippets leave error checks out, as the docs do
//lint:file-ignore SA5001 the snippets leave error checks out, as the docs do

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
	"github.com/levee-dev/levee/validate"
)

// README.md, "Using it in code".
func snippetReadmeCode(publisher message.Publisher, router *message.Router, sub message.Subscriber, handle message.NoPublishHandlerFunc) {
	// Each New validates its options and returns an error for a bad one.
	d, err := dlq.New(publisher, dlq.WithMaxAttempts(5))                                                 // retry + dead-letter, one middleware
	b, err := breaker.New(breaker.WithConsecutiveFailures(3), breaker.WithDrain(30*time.Second, 0.1, 1)) // below max attempts
	l, err := ratelimit.New(ratelimit.WithRate(200), ratelimit.WithBurst(20))
	s, err := priority.NewScheduler(priority.WithSlots(8)) // share it between handlers
	to, err := middleware.NewTimeout(2 * time.Second)

	stack := middleware.NewStack().
		Timeout(to.Middleware).
		RateLimit(l.Middleware).
		Priority(s.Middleware).
		Breaker(b.Middleware).
		DLQ(d.Middleware).
		Recover(middleware.Recover)

	h := router.AddConsumerHandler("payments", "orders", sub, handle)
	h.AddMiddleware(stack.Middleware)
	_ = err
}

// README.md, "Using it from YAML".
func snippetReadmeYAML(pub message.Publisher, logger watermill.LoggerAdapter, router *message.Router, sub message.Subscriber, handle message.NoPublishHandlerFunc, writeRows batch.Func) {
	cfg, err := config.Load("levee.yaml")
	if err != nil {
		log.Fatal(err)
	} // levee.yaml:14: handlers.payments.timeout: "3x" is not a duration
	deps := config.Deps{Publisher: pub, Logger: logger}

	router.AddConsumerHandler("payments", "orders", sub, handle)
	// A handler with a batch section: its settings and deps in one call.
	inv, err := cfg.Batcher("inventory", writeRows, deps)
	if err != nil {
		log.Fatal(err)
	}
	defer inv.Close()
	router.AddConsumerHandler("inventory", "reserve", sub, inv.NoPublishHandler)

	applied, err := config.Apply(router, cfg, deps)
	if err != nil {
		log.Fatal(err)
	}
	defer applied.Close()
}

// README.md, adapters/service.
func snippetReadmeService(logger watermill.LoggerAdapter, pay message.NoPublishHandlerFunc, writeRows batch.Func) {
	// A deploy stops a process with SIGTERM: Run returns once ctx ends, after
	// the messages it held were handed back (docs/TRANSPORTS.md, "Shutdown").
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load("levee.yaml")
	svc, err := service.New(ctx, cfg, config.Deps{Logger: logger})
	defer svc.Close()
	svc.Handle("payments", "orders", pay)
	err = svc.HandleBatch("inventory", "reserve", writeRows) // its batch section
	err = svc.Run(ctx)
	_ = err
}

// docs/BATCH.md.
func snippetBatch(cfg *config.Config, caps adapters.Capabilities, logger watermill.LoggerAdapter, tp trace.TracerProvider, mp metric.MeterProvider,
	router *message.Router, sub message.Subscriber, stack *middleware.Stack, writeInventory batch.Func) {
	bc, _ := cfg.Handler("inventory").Batch() // the handler's batch: section
	b, err := batch.New(writeInventory, append(bc.Options(),
		batch.WithConcurrency(caps.MaxInFlight), batch.WithLogger(logger),
		batch.WithTracerProvider(tp), batch.WithMeterProvider(mp))...)
	router.AddConsumerHandler("inventory", "orders", sub, b.NoPublishHandler).
		AddMiddleware(stack.Middleware)
	_ = err
	router.Close() // first: stops deliveries; open batches flush within max_wait
	b.Close()      // then: flushes whatever is left and waits for the batch funcs
}

// docs/DEDUP.md, the middleware.
func snippetDedup(redisClient *redis.Client, retrier *dlq.Retrier, br *breaker.Breaker) {
	store, _ := redisdedup.New(redisClient, "") // or pgdedup.New, dedup.NewMemStore
	// redisClient's options need ContextTimeoutEnabled: true, or the store
	// timeout does not bound a call (redisdedup.Open sets it).
	d, err := dedup.New(dedup.WithStore(store), dedup.WithLease(time.Minute))
	stack := middleware.NewStack().DLQ(retrier.Middleware).Dedup(d.Middleware).Breaker(br.Middleware)
	_, _ = stack, err
}

// Inventory is docs/DEDUP.md's handler with the PostgreSQL inbox.
type Inventory struct {
	pool  *pgxpool.Pool
	inbox *pgdedup.Store
}

var qty, sku = 1, "sku-1"

// Handle is docs/DEDUP.md's transactional handler.
func (h *Inventory) Handle(msg *message.Message) error {
	ctx := msg.Context()
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE stock SET reserved = reserved + $1 WHERE sku = $2`, qty, sku); err != nil {
		return err
	}
	if err := h.inbox.MarkDone(ctx, tx); errors.Is(err, dedup.ErrAlreadyDone) {
		return nil // another delivery committed first: roll back, the work is done
	} else if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// docs/OPERATIONS.md, in code.
func snippetOperations(ctx context.Context, storeCfg dlqops.StoreConfig, mp metric.MeterProvider, logger watermill.LoggerAdapter,
	router *message.Router, transport *adapters.Transport, registry *validate.Registry, tracer *tracing.Tracer, fp string) {
	store, closeStore, err := dlqstore.FromConfig(ctx, storeCfg) // store: section; memory, postgres or redis
	defer closeStore()

	mon, err := dlqops.NewMonitor(store, dlqops.WithMeterProvider(mp), dlqops.WithLogger(logger),
		dlqops.WithStoreTimeout(storeCfg.StoreTimeout())) // store: timeout
	for _, topic := range []string{"orders.dlq", "payments.dlq"} {
		router.AddConsumerHandler("levee-dlq-monitor-"+topic, topic, transport.Subscriber, mon.Handle)
	}

	gauges, err := dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(mp)) // levee_dlq_group_* gauges
	defer gauges.Close()

	pruner, err := dlqops.NewPruner(store, storeCfg.Retention.Policy(), time.Hour)
	go pruner.Run(ctx) // stops with ctx

	// replay from code (the CLI does the same)
	r, err := dlqops.NewReplayer(store, transport.Publisher,
		dlqops.WithReplayRate(50), dlqops.WithMaxReplays(3),
		dlqops.WithReplayValidator(registry.Validate), // package validate, optional
		dlqops.WithReplaySpan(tracer.StartReplay))     // tracing, optional
	report, err := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Group: fp}})
	_, _ = report, err
}

// docs/TRACING.md, publishing from a service handler.
func snippetTracingHandlerPublish(tp trace.TracerProvider, svc *service.Service, msg *message.Message, payload []byte) {
	tr, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem(svc.Deps().System))
	pub, err := tr.DecoratePublisher(svc.Transport.Publisher) // once, at start

	out := message.NewMessage(watermill.NewUUID(), payload) // in the handler
	out.SetContext(msg.Context())                           // the consumer span: the publish span's parent
	err = pub.Publish("orders.enriched", out)
	_ = err
}

// docs/TRACING.md.
func snippetTracing(tp trace.TracerProvider, mp metric.MeterProvider, router *message.Router) {
	tr, err := tracing.New(
		tracing.WithTracerProvider(tp),      // nil: tracing off (pass-through)
		tracing.WithMeterProvider(mp),       // counts invalid trace contexts
		tracing.WithSystem("rabbitmq"),      // adapters set this per transport
		tracing.WithConsumerGroup("orders"), // where the transport has one
	)
	m, err := tracing.NewMetrics(tracing.WithMeterProvider(mp))

	stack := middleware.NewStack().Tracing(tr.Middleware).Metrics(m.Middleware) // + the other slots
	router.AddMiddleware(stack.Middleware)
	router.AddPublisherDecorators(tr.DecoratePublisher) // producer spans + injection
	_ = err
}
