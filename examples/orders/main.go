package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

//go:embed levee.yaml
var defaultConfig []byte

// Topics of the flow.
const (
	topicOrders = "orders"
	topicPaid   = "order.paid"
)

type options struct {
	orders      int
	vipShare    float64
	malformed   int
	outage      time.Duration
	outageAfter time.Duration
	transient   float64
	service     time.Duration
	configPath  string
	postgres    string
	metrics     string
	traces      bool
	linger      time.Duration
	maxRun      time.Duration
	rate        float64
	seed        uint64
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 300, "number of orders to publish")
	flag.Float64Var(&o.vipShare, "vip", 0.1, "share of VIP orders (0..1)")
	flag.Float64Var(&o.rate, "rate", 200, "order intake rate in orders per second (0: publish all at once)")
	flag.IntVar(&o.malformed, "malformed", 0, "number of extra malformed orders")
	flag.DurationVar(&o.outage, "outage", 0, "payment gateway outage length (e.g. 5s)")
	flag.DurationVar(&o.outageAfter, "outage-after", 500*time.Millisecond, "when the outage starts")
	flag.Float64Var(&o.transient, "transient", 0, "share of payment calls failing transiently (0..1)")
	flag.DurationVar(&o.service, "service", 2*time.Millisecond, "payment gateway service time")
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL URL: write batched inventory rows there (default: in memory)")
	flag.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9464) at /metrics")
	flag.BoolVar(&o.traces, "traces", false, "write spans to stdout (OTLP instead when OTEL_EXPORTER_OTLP_ENDPOINT is set)")
	flag.DurationVar(&o.linger, "linger", 0, "keep serving /metrics this long after the run (for a scrape)")
	flag.StringVar(&o.configPath, "config", "", "levee.yaml to use (default: the embedded examples/orders/levee.yaml)")
	flag.DurationVar(&o.maxRun, "max-run", 2*time.Minute, "give up (exit 1) if the run has not settled by then")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func loadConfig(path string) (*middleware.Config, error) {
	if path == "" {
		return middleware.ParseConfig("examples/orders/levee.yaml", defaultConfig, os.LookupEnv, nil)
	}
	return middleware.LoadConfig(path)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.orders < 0 || o.malformed < 0 || o.vipShare < 0 || o.vipShare > 1 || o.transient < 0 || o.transient >= 1 {
		return fmt.Errorf("invalid flags: -orders and -malformed must be >= 0, -vip in [0,1], -transient in [0,1)")
	}
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return err
	}
	logger := watermill.NopLogger{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(o.orders + o.malformed + 16)}, logger)
	defer pubsub.Close()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	tracker := NewTracker()
	router.AddMiddleware(tracker.Middleware)

	start := time.Now()
	gateway := NewGateway(o.service, o.outageAfter, o.outage, o.transient, o.seed)
	inventory := NewInventory()
	sms := &SMSProvider{}

	router.AddHandler("payments", topicOrders, pubsub, topicPaid, pubsub, func(msg *message.Message) ([]*message.Message, error) {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return nil, err
		}
		if err := gateway.Charge(order); err != nil {
			return nil, err
		}
		paid := message.NewMessage(watermill.NewUUID(), msg.Payload)
		paid.Metadata.Set("levee_priority", msg.Metadata.Get("levee_priority"))
		return []*message.Message{paid}, nil
	})
	// Inventory updates are batched: each message joins a batch and gets
	// its own result when the batch is written.
	var sink inventorySink = memorySink{inv: inventory}
	var pg *pgSink
	if o.postgres != "" {
		pg, err = newPGSink(ctx, o.postgres, inventory)
		if err != nil {
			return err
		}
		sink = pg
	}
	defer sink.Close()
	var batchOpts []batch.Option
	if v, ok := cfg.Handlers["inventory"].Value("batch"); ok {
		batchOpts = v.(batch.Config).Options()
	}
	batcher, err := batch.New(inventoryBatch(sink), append(batchOpts, batch.WithLogger(logger))...)
	if err != nil {
		return err
	}
	defer batcher.Close()
	router.AddConsumerHandler("inventory", topicPaid, pubsub, batcher.NoPublishHandler)
	router.AddConsumerHandler("notifications", topicPaid, pubsub, func(msg *message.Message) error {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return err
		}
		return sms.Send(order.Phone, fmt.Sprintf("Order %s paid: %d.%02d EUR", order.ID, order.Amount/100, order.Amount%100))
	})

	tel, err := setupTelemetry(ctx, o.metrics, o.traces, out)
	if err != nil {
		return err
	}
	defer tel.Close()
	if tel.addr != "" {
		fmt.Fprintf(out, "serving metrics on http://%s/metrics\n", tel.addr)
	}
	tracer, err := tracing.New(tracing.WithTracerProvider(tel.tp), tracing.WithSystem("gochannel"))
	if err != nil {
		return err
	}
	router.AddPublisherDecorators(tracer.DecoratePublisher)
	intakePub, err := tracer.DecoratePublisher(pubsub)
	if err != nil {
		return err
	}

	applied, err := middleware.Apply(router, cfg, middleware.Deps{
		Publisher: pubsub, Logger: logger, TracerProvider: tel.tp, MeterProvider: tel.mp, System: "gochannel",
	})
	if err != nil {
		return err
	}
	defer applied.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(runCtx) }()
	<-router.Running()

	msgs := makeOrders(o)
	publishErr := make(chan error, 1)
	go func() { publishErr <- intake(runCtx, intakePub, msgs, o.rate) }()

	var timeline *timeline
	if b, ok := applied.Instance("payments", "breaker").(*breaker.Breaker); ok && o.outage > 0 {
		timeline = sampleBreaker(runCtx, b, gateway, start)
	}

	total := len(msgs)
	settled := tracker.Wait(func() bool {
		paySettled, paid := tracker.Settled("payments")
		invSettled, _ := tracker.Settled("inventory")
		smsSettled, _ := tracker.Settled("notifications")
		return paySettled >= total && invSettled >= paid && smsSettled >= paid
	}, o.maxRun)
	elapsed := time.Since(start)
	cancel()
	if err := <-publishErr; err != nil && settled {
		return err
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}

	fmt.Fprintf(out, "orders demo: %d orders (%d malformed) in %s\n\n", total, o.malformed, elapsed.Round(time.Millisecond))
	tracker.Print(out, []string{"payments", "inventory", "notifications"})
	fmt.Fprintln(out, "\npayments latency by priority:")
	tracker.PrintPriorityWaits(out, "payments")
	if o.outage > 0 {
		fmt.Fprintf(out, "\npayments per second (gateway outage %s from %s):\n", o.outage, o.outageAfter)
		timeline.print(out, gateway.CallsPerSecond(start))
	}
	count, rate := sms.Rate()
	fmt.Fprintf(out, "\nSMS sent: %d (achieved %.1f/s); units reserved: %d\n", count, rate, inventory.Total())
	if pg != nil {
		rows, lines, err := pg.Rows(ctx)
		if err != nil {
			return fmt.Errorf("counting PostgreSQL rows: %w", err)
		}
		fmt.Fprintf(out, "PostgreSQL rows for this run: %d (order lines written: %d)\n", rows, lines)
		if rows != lines {
			return fmt.Errorf("PostgreSQL holds %d rows for %d order lines", rows, lines)
		}
	}
	if tel.addr != "" && o.linger > 0 {
		fmt.Fprintf(out, "serving metrics for %s more\n", o.linger)
		time.Sleep(o.linger)
	}
	if !settled {
		return fmt.Errorf("run did not settle within %s", o.maxRun)
	}
	return nil
}

// intake publishes msgs at rate per second (all at once for rate <= 0),
// stamping each with its publish time.
func intake(ctx context.Context, pub message.Publisher, msgs []*message.Message, rate float64) error {
	if rate <= 0 {
		stamp(msgs...)
		return pub.Publish(topicOrders, msgs...)
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for _, m := range msgs {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		next = next.Add(interval)
		stamp(m)
		if err := pub.Publish(topicOrders, m); err != nil {
			return fmt.Errorf("publishing orders: %w", err)
		}
	}
	return nil
}

func stamp(msgs ...*message.Message) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	for _, m := range msgs {
		m.Metadata.Set(metaPublishedAt, now)
	}
}

// makeOrders builds the orders to publish: VIP orders carry levee_priority 9.
func makeOrders(o options) []*message.Message {
	var msgs []*message.Message
	vipEvery := 0
	if o.vipShare > 0 {
		vipEvery = int(1 / o.vipShare)
	}
	for i := 0; i < o.orders; i++ {
		order := Order{
			ID:       fmt.Sprintf("o-%05d", i),
			Customer: fmt.Sprintf("c-%03d", i%40),
			Phone:    fmt.Sprintf("+4915%08d", i),
			VIP:      vipEvery > 0 && i%vipEvery == 0,
			Amount:   1000 + i%5000,
			Items:    []Item{{SKU: fmt.Sprintf("sku-%d", i%17), Qty: 1 + i%3}},
		}
		payload, _ := json.Marshal(order)
		m := message.NewMessage(watermill.NewUUID(), payload)
		if order.VIP {
			m.Metadata.Set("levee_priority", "9")
		}
		msgs = append(msgs, m)
	}
	for i := 0; i < o.malformed; i++ {
		bad := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"id": "bad-%d", "items": [`, i)))
		// Spread the malformed ones among the good ones.
		at := (i*7919 + 13) % (len(msgs) + 1)
		msgs = append(msgs[:at], append([]*message.Message{bad}, msgs[at:]...)...)
	}
	return msgs
}
