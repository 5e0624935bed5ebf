package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/tracing"
)

// run is one run of a plan: what Run builds step by step and tears down
// at the end.
type run struct {
	p      *Plan
	log    io.Writer
	logger watermill.LoggerAdapter
	runID  string

	cfg         *config.Config
	maxAttempts int
	assign      *assigner

	broker, storeServer *privateNATS // nil unless the plan asks for them
	kind                string       // the transport kind
	tr                  *adapters.Transport
	tel                 *telemetry
	tracer              *tracing.Tracer
	pub                 message.Publisher // the transport's publisher, traced

	start               time.Time // reset when the first message is sent
	tl                  *timeline
	ledger              *Ledger
	cons                *consumer
	topicIn, topicBatch string

	rawStore  dlqops.Store
	storeURL  string // the private store's, or "" for the loopback one
	brokerURL string // the private broker's, or "" for the loopback one
	store     stallStore
	monitor   *dlqops.Monitor
	router    *message.Router
	deps      config.Deps
	applied   *config.Applied

	// role: in process (the default), the runner of a consumer process,
	// or the consumer process itself (spec set).
	role role
	spec *processSpec
	sup  *supervisor // the consumer process, for roleRunner
	fx   *effects    // plans with dedup: true (dedup.go)
	// events is a consumer process's event log (roleConsumer).
	events *eventLog

	closers []func() // run in reverse order by close
}

// role is what part of a run this process plays.
type role uint8

const (
	roleInProcess role = iota // everything in this process
	roleRunner                // producer, faults, DLQ watchers, checker; the handlers run in a consumer process
	roleConsumer              // the handlers "chaos" and "chaos-batch" only (a consumer process)
)

// onClose registers f to run when the run closes, before everything
// registered earlier.
func (r *run) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *run) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// prepare loads the stack and sets up the fates, the ledger and the
// consumer.
func (r *run) prepare(context.Context) error {
	cfg, err := config.Load(r.p.StackPath())
	if err != nil {
		return err
	}
	r.cfg = cfg
	if r.maxAttempts, err = stackMaxAttempts(cfg); err != nil {
		return err
	}
	if r.assign, err = newAssigner(r.p.Seed, r.p.Mix(), r.maxAttempts); err != nil {
		return err
	}
	return nil
}

// openTransport starts the private broker if the plan asks for one,
// connects the transport and builds the telemetry and the traced
// publisher.
func (r *run) openTransport(ctx context.Context) error {
	var broker *privateNATS
	var brokerURL string
	var err error
	if r.role == roleConsumer {
		brokerURL = r.spec.BrokerURL
	} else if broker, brokerURL, err = startPrivateBroker(ctx, r.p); err != nil {
		return err
	}
	if broker != nil {
		r.onClose(broker.stop)
		r.broker = broker
	}
	r.brokerURL = brokerURL
	tc := transportConfig(r.p, brokerURL)
	r.kind = tc.Kind
	tr, closeTransport, err := openTransport(ctx, tc, r.logger)
	if err != nil {
		return err
	}
	r.onClose(closeTransport)
	r.tr = tr

	r.tel = newTelemetry()
	r.onClose(func() { r.tel.close(context.WithoutCancel(ctx)) })
	r.tracer, err = tracing.New(tracing.WithTracerProvider(r.tel.tp), tracing.WithMeterProvider(r.tel.mp), tracing.WithSystem(tr.Capabilities.System))
	if err != nil {
		return err
	}
	r.pub, err = r.tracer.DecoratePublisher(tr.Publisher)
	if err != nil {
		return err
	}

	r.start = time.Now()
	r.tl = &timeline{start: r.start}
	r.ledger = NewLedger(r.p.Messages, r.p.OrderKeys)
	r.ledger.SetAckDeadline(tr.Capabilities.AckDeadline)
	if r.p.Dedup {
		if r.fx, err = openEffects(ctx, r.runID); err != nil {
			return err
		}
		r.ledger.SetEffects()
		fx := r.fx
		r.onClose(fx.close) // LIFO: after the drop
		if r.role != roleConsumer {
			r.onClose(func() { fx.drop(context.WithoutCancel(ctx)) })
		}
	}
	r.cons = &consumer{rec: r.ledger, ledger: r.ledger, plan: r.p, runID: r.runID, start: r.start, now: time.Now, fx: r.fx}
	r.topicIn, r.topicBatch = "chaos_"+r.runID+"_in", "chaos_"+r.runID+"_batch"
	if r.role != roleConsumer && broker == nil {
		// On a shared broker the run deletes its topics (queues, streams,
		// tables) when it ends, before the transport is closed (onClose
		// runs last in, first out), as it drops its store data: a run
		// leaves nothing on the user's broker. A private broker dies with
		// the run.
		topics := []string{r.topicIn, r.topicBatch, r.topicIn + ".dlq", r.topicBatch + ".dlq"}
		r.onClose(func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := tr.DeleteTopics(dctx, topics...); err != nil {
				r.logger.Error("chaos: run topics left on the broker", err, watermill.LogFields{"topics": topics})
			}
		})
	}
	if r.role == roleConsumer {
		return r.openEventLog()
	}
	return nil
}

// openStore starts the private store if the plan asks for one, opens the
// DLQ store (stalled while a store_stall fault is active) and its monitor.
func (r *run) openStore(ctx context.Context) error {
	var storeServer *privateNATS
	var storeURL string
	var err error
	if r.role == roleConsumer {
		storeURL = r.spec.StoreURL
	} else if storeServer, storeURL, err = startPrivateStore(ctx, r.p); err != nil {
		return err
	}
	if storeServer != nil {
		r.onClose(storeServer.stop)
		r.storeServer = storeServer
	}
	r.storeURL = storeURL
	sc := storeConfig(r.p, "levee_chaos_"+r.runID, storeURL)
	if r.role != roleConsumer && storeServer == nil {
		// Registered first, so it runs last: after the store is closed.
		r.onClose(func() {
			if err := dropRunData(context.Background(), sc); err != nil {
				r.logger.Error("chaos: run data left in the store", err, nil)
			}
		})
	}
	rawStore, closeStore, err := dlqstore.FromConfig(ctx, sc)
	if err != nil {
		return err
	}
	r.onClose(func() { closeStore() })
	r.rawStore = rawStore
	r.store = stallStore{Store: rawStore, stalledUntil: func() time.Time {
		if f, ok := r.p.active(FaultStoreStall, time.Since(r.start)); ok {
			return r.start.Add(f.End())
		}
		return time.Time{}
	}}
	r.monitor, err = dlqops.NewMonitor(r.store, dlqops.WithMeterProvider(r.tel.mp), dlqops.WithStoreTimeout(MonitorStoreTimeout),
		dlqops.WithMonitorRetryAfter(50*time.Millisecond))
	return err
}

// buildRouter adds the plan's handlers (one plain, one batched) and the
// dead-letter watchers, and applies the stack to them.
func (r *run) buildRouter(context.Context) error {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, r.logger)
	if err != nil {
		return err
	}
	r.router = router
	router.AddMiddleware(r.tr.Middleware)
	router.AddMiddleware(r.cons.Middleware)
	router.AddPublisherDecorators(r.tracer.DecoratePublisher)

	if r.role != roleConsumer {
		for _, t := range []string{r.topicIn, r.topicBatch} {
			router.AddConsumerHandler("chaos-dlq-"+t, t+".dlq", r.tr.Subscriber, r.cons.DeadLetters(r.monitor))
		}
	}
	r.deps = r.stackDeps()
	if r.role == roleRunner {
		return nil // the handlers run in the consumer process
	}
	router.AddConsumerHandler(HandlerName, r.topicIn, r.tr.Subscriber, r.cons.Handle)
	var batchOpts []batch.Option
	if bc, ok := r.cfg.Handler(BatchHandlerName).Batch(); ok {
		batchOpts = bc.Options()
	}
	batcher, err := batch.New(r.cons.Batch, append(batchOpts, batch.WithLogger(r.logger),
		batch.WithTracerProvider(r.tel.tp), batch.WithMeterProvider(r.tel.mp))...)
	if err != nil {
		return err
	}
	r.onClose(func() { batcher.Close() })
	router.AddConsumerHandler(BatchHandlerName, r.topicBatch, r.tr.Subscriber, batcher.NoPublishHandler)
	applied, err := config.Apply(router, r.cfg, r.deps)
	if err != nil {
		return err
	}
	r.onClose(func() { applied.Close() })
	r.applied = applied
	if _, ok := applied.Dedup(HandlerName); r.p.Dedup && !ok {
		return fmt.Errorf("levee/chaos: dedup: true needs a dedup section (store: shared) on handler %q in %s", HandlerName, r.p.StackPath())
	}
	return nil
}

// stackDeps is what the stack is built with: the run's publisher,
// telemetry, the transport's limits, the store's attempt count and the
// schemas (topic names without the run ID).
func (r *run) stackDeps() config.Deps {
	attempts, _ := dlqstore.Attempts(r.rawStore)
	caps, cfg, runID := r.tr.Capabilities, r.cfg, r.runID
	deps := config.Deps{
		Publisher: r.pub, Logger: r.logger, TracerProvider: r.tel.tp, MeterProvider: r.tel.mp,
		System: caps.System, MaxInFlight: caps.MaxInFlight, AttemptStore: attempts,
		Validator: func(topic string, payload []byte) error {
			if cfg.Schemas() == nil {
				return nil
			}
			return cfg.Schemas().Validate(strings.Replace(topic, "_"+runID, "", 1), payload)
		},
	}
	if d := caps.AckDeadline; d > 0 {
		deps.MaxHold = d * 8 / 10
	}
	if r.fx != nil {
		deps.DedupStore = r.fx.inbox
	}
	// Every breaker transition, however short (a sampler of State missed
	// the half-open probes that failed within its period, and its reads
	// turned an expired open breaker half-open themselves): into the
	// timeline, or a consumer process's event log.
	deps.OnBreakerStateChange = func(name string, from, to breaker.State) {
		if r.events != nil {
			r.events.breaker(name, from.String(), to.String())
			return
		}
		r.tl.add("breaker %s: %s -> %s", name, from, to)
	}
	return deps
}

// execute runs the router, produces the messages while the faults are
// injected, waits until they settled (then a grace period for late
// duplicates), stops everything and checks the ledger.
func (r *run) execute(ctx context.Context) (*Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- r.router.Run(runCtx) }()
	select {
	case <-r.router.Running():
	case err := <-routerDone:
		return nil, fmt.Errorf("levee/chaos: router: %w", err)
	}

	p, tl := r.p, r.tl
	if p.Warmup > 0 { // let the consumers settle (a Kafka group's rebalances) before the first publish
		warm := time.NewTimer(p.Warmup)
		select {
		case <-warm.C:
		case <-ctx.Done():
			warm.Stop()
			return nil, ctx.Err()
		}
	}
	fmt.Fprintf(r.log, "run %s: %d messages over %s (max_attempts %d), stack %s\n", r.runID, p.Messages, r.kind, r.maxAttempts, p.StackPath())
	tl.start = time.Now()
	r.start = tl.start
	r.cons.start = r.start
	if r.role == roleRunner {
		sup, err := newSupervisor(r)
		if err != nil {
			return nil, err
		}
		r.sup = sup
		defer sup.cleanup()
		if err := sup.start(runCtx); err != nil {
			sup.stop()
			return nil, err
		}
		tl.add("consumer process %d up (incarnation 0)", sup.pid())
	}
	done := make(chan struct{})
	bg := &background{}
	bg.go_(func() {
		faultLoop(runCtx, done, p, tl, &replayEnv{store: r.store, pub: r.pub, ledger: r.ledger, cons: r.cons, validator: r.deps.Validator},
			r.broker, r.storeServer, r.sup)
	})
	prodErr := make(chan error, 1)
	bg.go_(func() {
		prodErr <- produce(runCtx, p, r.assign, r.ledger, r.pub, r.runID, r.topicIn, r.topicBatch, r.start, tl)
	})

	settled := waitSettled(runCtx, p, r.ledger, r.start, prodErr, r.log)
	tl.add("settled: %v", settled)
	// Grace: keep consuming a while to catch late duplicates.
	grace := time.NewTimer(p.Grace)
	select {
	case <-grace.C:
	case <-ctx.Done():
		grace.Stop()
	}
	elapsed := time.Since(r.start)
	if r.sup != nil {
		r.sup.stop() // SIGTERM: it finishes what it holds; its events are read to the end
	}
	close(done)
	cancel()
	bg.wait()
	return r.result(ctx, elapsed, settled, <-routerDone)
}

// result checks the ledger against what the run saw.
func (r *run) result(ctx context.Context, elapsed time.Duration, settled bool, routerErr error) (*Result, error) {
	p := r.p
	listed := listStore(context.WithoutCancel(ctx), r.rawStore, r.ledger, r.cons)
	if r.fx != nil && listed == nil {
		listed = r.fx.list(context.WithoutCancel(ctx), r.ledger)
	}
	res := &Result{
		Plan: p, Elapsed: elapsed, Settled: settled, Timeline: r.tl.list(), Transport: p.Transport, RunID: r.runID,
		Spans: r.tel.spans.ended.Load(), Counters: r.tel.counters(context.WithoutCancel(ctx), counterNames...),
	}
	if r.sup != nil {
		res.Counters = r.sup.totals() // the stack ran in the consumer processes
	}
	res.Report = Check(r.ledger, CheckOptions{MaxAttempts: r.maxAttempts, StoreListed: listed == nil,
		AckLoss: hasFault(p, FaultBrokerRestart), ConsumerKill: hasFault(p, FaultConsumerKill), AckDeadline: r.tr.Capabilities.AckDeadline, Effects: p.Dedup,
		Ordered: p.OrderKeys > 0 && r.tr.Capabilities.OrderedPerKey})
	if listed != nil {
		return res, fmt.Errorf("levee/chaos: listing the DLQ store: %w", listed)
	}
	if routerErr != nil && !errors.Is(routerErr, context.Canceled) {
		return res, fmt.Errorf("levee/chaos: router: %w", routerErr)
	}
	return res, nil
}
