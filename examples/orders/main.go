package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/tracing"
)

func main() {
	o, _ := parseFlags(flag.CommandLine, os.Args[1:]) // CommandLine exits on a bad flag
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// demo is one run: what run builds step by step and tears down at the end.
type demo struct {
	o      options
	out    io.Writer
	logger watermill.LoggerAdapter
	cfg    *config.Config

	tc      adapters.TransportConfig // as given: Kafka without brokers is the in-process cluster
	tr      *adapters.Transport
	names   topicNames
	topics  flowTopics // this run's topic names on the transport
	router  *message.Router
	tracker *Tracker
	tel     *telemetry
	pub     message.Publisher // the transport's publisher, traced
	start   time.Time
	tl      *timeline // the payments breaker's states, for -outage

	gateway   *Gateway
	inventory *Inventory
	sms       *SMSProvider
	pg        *pgSink // nil unless -postgres

	reserves atomic.Int64 // reserve requests published (dedup.go)
	copies   atomic.Int64 // of them, published twice on purpose

	sc      dlqops.StoreConfig
	store   dlqops.Store
	applied *config.Applied
	// handlerFuncs are the handlers' own functions by name, which the
	// tracker and Watermill wrap: applyConfig names them to their stacks
	// so that dead letters name them (levee_code_location).
	handlerFuncs map[string]any

	closers []func() // run in reverse order by close
}

// run runs the demo: it builds the flow over the transport levee.yaml (or
// -transport) names, publishes the orders, waits until every handler has
// settled them (or -max-run passed) and writes the report to out.
func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.fleet != "" {
		return runFleetDemo(ctx, o, out)
	}
	d := &demo{o: o, out: out, logger: watermill.NopLogger{}}
	defer d.close()
	if err := d.open(ctx); err != nil {
		return d.embeddedName(err)
	}
	if err := d.addHandlers(ctx); err != nil {
		return err
	}
	if err := d.watchDeadLetters(ctx); err != nil {
		return err
	}
	if err := d.applyConfig(); err != nil {
		return d.embeddedName(err)
	}
	return d.execute(ctx)
}

// onClose registers f to run when the demo closes, before everything
// registered earlier.
func (d *demo) onClose(f func()) { d.closers = append(d.closers, f) }

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// open loads the configuration, connects the transport and builds the
// router, the telemetry and the traced publisher.
func (d *demo) open(ctx context.Context) error {
	cfg, err := loadConfig(d.o.configPath)
	if err != nil {
		return err
	}
	d.cfg = cfg
	tc, err := transportConfig(cfg, d.o.transport)
	if err != nil {
		return err
	}
	d.tc = tc
	tr, closeTransport, err := openTransport(ctx, tc, d.logger)
	if err != nil {
		return err
	}
	d.onClose(closeTransport)
	d.tr = tr
	d.names = newTopicNames(tr.Capabilities.Kind)
	d.topics = flowTopicsOf(d.names)
	d.onClose(d.removeTopics) // before closeTransport

	d.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, d.logger)
	if err != nil {
		return err
	}
	// Outermost: a handler error asking for a delayed redelivery
	// (RetryAfter) becomes the transport's native delayed Nack where it has
	// one (JetStream).
	d.router.AddMiddleware(tr.Middleware)
	d.tracker = NewTracker()
	d.router.AddMiddleware(d.tracker.Middleware)

	d.tel, err = setupTelemetry(ctx, d.o.metrics, d.o.traces, d.out)
	if err != nil {
		return err
	}
	d.onClose(func() { d.tel.Close() })
	if d.tel.addr != "" {
		fmt.Fprintf(d.out, "serving metrics on http://%s/metrics\n", d.tel.addr)
	}
	tracer, err := tracing.New(tracing.WithTracerProvider(d.tel.tp), tracing.WithSystem(tr.Capabilities.System))
	if err != nil {
		return err
	}
	d.router.AddPublisherDecorators(tracer.DecoratePublisher)
	d.pub, err = tracer.DecoratePublisher(tr.Publisher)
	if err != nil {
		return err
	}
	d.start = time.Now()
	return nil
}

// execute runs the router, publishes the orders, waits until they
// settled and reports; with -replay-fixed it then replays the over-limit
// dead letters.
func (d *demo) execute(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- d.router.Run(runCtx) }()
	<-d.router.Running()

	msgs := makeOrders(d.o)
	publishErr := make(chan error, 1)
	go func() { publishErr <- intake(runCtx, d.pub, d.topics.orders, msgs, d.o.rate) }()

	var tl *timeline
	if b, ok := d.applied.Breaker("payments"); ok && d.o.outage > 0 {
		tl = d.tl
		tl.sample(runCtx, b)
	}
	settled := d.waitSettled(len(msgs))
	if err := d.report(ctx, len(msgs), tl); err != nil {
		return err
	}
	if d.o.replayFixed && settled {
		if err := replayFixed(ctx, d.out, d.o, d.store, d.pub, d.gateway, d.tracker, d.start); err != nil {
			return err
		}
	}
	cancel()
	if err := <-publishErr; err != nil && settled {
		return err
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return d.finish(ctx, settled)
}

// waitSettled waits until every handler settled what reached it (or
// -max-run passed) and reports whether they did.
func (d *demo) waitSettled(total int) bool {
	t := d.tracker
	return t.Wait(func() bool {
		paySettled, paid := t.Settled("payments")
		invSettled, _ := t.Settled("inventory")
		notSettled, notified := t.Settled("notifications")
		smsSettled, _ := t.Settled("sms")
		return paySettled >= total && invSettled >= paid && notSettled >= paid && smsSettled >= notified && d.copiesDropped()
	}, d.o.maxRun)
}
