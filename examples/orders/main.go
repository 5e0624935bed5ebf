package main

import (
	"context"
	"embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/tracing"
)

// The default configuration and its schemas, used when -config is not set.
//
//go:embed levee.yaml schemas/*.json
var embedded embed.FS

// Topics of the flow.
const (
	topicOrders  = "orders"            // order intake -> payments
	topicReserve = "inventory.reserve" // payments -> inventory
	topicPaid    = "order.paid"        // payments -> notifications
	topicSMS     = "sms.send"          // notifications -> sms
)

// The handlers, in report order.
var handlerNames = []string{"payments", "inventory", "notifications", "sms"}

type options struct {
	orders      int
	vipShare    float64
	malformed   int
	badPhones   int
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
	limit       int
	big         int
	replayFixed bool
	transport   string
	store       string
	storePrefix string
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 300, "number of orders to publish")
	flag.Float64Var(&o.rate, "rate", 200, "order intake rate in orders per second (0: publish all at once)")
	flag.Float64Var(&o.vipShare, "vip", 0.1, "share of VIP orders (0..1), published with levee_priority 9")
	flag.IntVar(&o.malformed, "malformed", 5, "number of extra malformed orders (dead-lettered by payments, class validation)")
	flag.IntVar(&o.badPhones, "bad-phones", 4, "number of orders whose phone number is invalid (their SMS is dead-lettered)")
	flag.DurationVar(&o.outage, "outage", 0, "payment gateway outage length (e.g. 5s)")
	flag.DurationVar(&o.outageAfter, "outage-after", 500*time.Millisecond, "when the outage starts")
	flag.Float64Var(&o.transient, "transient", 0.05, "share of payment calls failing transiently (0..1); they are retried")
	flag.DurationVar(&o.service, "service", 10*time.Millisecond, "payment gateway service time per call")
	flag.StringVar(&o.transport, "transport", "", "run over gochannel, amqp, kafka (in-process), nats, redis or postgres on loopback (default: levee.yaml's transport, gochannel)")
	flag.StringVar(&o.store, "store", "", "record dead letters in a memory, redis or postgres store on loopback (default: levee.yaml's store section, memory)")
	flag.StringVar(&o.storePrefix, "store-prefix", "levee_orders", "with -store redis the key prefix, with -store postgres the schema")
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL URL: write batched inventory rows there (default: in memory)")
	flag.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9464) at /metrics")
	flag.BoolVar(&o.traces, "traces", false, "write spans to stdout (OTLP instead when OTEL_EXPORTER_OTLP_ENDPOINT is set)")
	flag.DurationVar(&o.linger, "linger", 0, "keep serving /metrics this long after the run (for a scrape)")
	flag.StringVar(&o.configPath, "config", "", "levee.yaml to use (default: the embedded examples/orders/levee.yaml)")
	flag.DurationVar(&o.maxRun, "max-run", 2*time.Minute, "give up (exit 1) if the run has not settled by then")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	flag.IntVar(&o.limit, "gateway-limit", 200000, "largest amount in cents the gateway accepts (0: no limit)")
	flag.IntVar(&o.big, "big-orders", 6, "number of orders over the gateway limit (dead-lettered, class permanent)")
	flag.BoolVar(&o.replayFixed, "replay-fixed", false, "after the run, lift the gateway limit and replay the over-limit dead letters")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// loadConfig loads path, or the embedded configuration (written with its
// schemas to a temporary folder, so relative schema paths resolve).
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	dir, err := os.MkdirTemp("", "levee-orders-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	err = fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if err == nil {
				err = os.MkdirAll(filepath.Join(dir, p), 0o755)
			}
			return err
		}
		data, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
	if err != nil {
		return nil, err
	}
	return config.Load(filepath.Join(dir, "levee.yaml"))
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.orders < 0 || o.malformed < 0 || o.badPhones < 0 || o.badPhones > o.orders || o.big < 0 || o.big > o.orders || o.limit < 0 ||
		o.vipShare < 0 || o.vipShare > 1 || o.transient < 0 || o.transient >= 1 {
		return fmt.Errorf("invalid flags: -orders, -malformed, -bad-phones must be >= 0 (bad phones <= orders), -vip in [0,1], -transient in [0,1)")
	}
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return err
	}
	logger := watermill.NopLogger{}
	tc, err := transportConfig(cfg, o.transport)
	if err != nil {
		return err
	}
	tr, closeTransport, err := openTransport(ctx, tc, logger)
	if err != nil {
		return err
	}
	defer closeTransport()
	caps := tr.Capabilities
	names := newTopicNames(caps.Kind)
	topicOrders, topicPaid, topicReserve, topicSMS := names.of(topicOrders), names.of(topicPaid), names.of(topicReserve), names.of(topicSMS)

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	// Outermost: a handler error asking for a delayed redelivery
	// (RetryAfter) becomes the transport's native delayed Nack where it has
	// one (JetStream).
	router.AddMiddleware(tr.Middleware)
	tracker := NewTracker()
	router.AddMiddleware(tracker.Middleware)

	tel, err := setupTelemetry(ctx, o.metrics, o.traces, out)
	if err != nil {
		return err
	}
	defer tel.Close()
	if tel.addr != "" {
		fmt.Fprintf(out, "serving metrics on http://%s/metrics\n", tel.addr)
	}
	tracer, err := tracing.New(tracing.WithTracerProvider(tel.tp), tracing.WithSystem(caps.System))
	if err != nil {
		return err
	}
	router.AddPublisherDecorators(tracer.DecoratePublisher)
	pub, err := tracer.DecoratePublisher(tr.Publisher)
	if err != nil {
		return err
	}

	start := time.Now()
	gateway := NewGateway(o.service, o.outageAfter, o.outage, o.transient, o.seed)
	gateway.SetLimit(o.limit)
	inventory := NewInventory()
	sms := &SMSProvider{}

	sub := tr.Subscriber
	// payments: charge the order, then announce it paid to notifications
	// and ask inventory to reserve it. A malformed order never reaches this
	// code: the dlq slot validates it against schemas/order.json and
	// dead-letters it with class validation. Publishing before the ack
	// keeps at-least-once (a retry may publish twice; inventory rows are
	// keyed by message, the SMS may repeat).
	router.AddConsumerHandler("payments", topicOrders, sub, tracker.Consumer("payments", func(msg *message.Message) ([]*message.Message, error) {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return nil, dlq.Permanent(err)
		}
		if err := gateway.Charge(order); err != nil {
			return nil, err // transient: retried with backoff; an outage trips the breaker
		}
		for _, topic := range []string{topicReserve, topicPaid} {
			out := message.NewMessage(watermill.NewUUID(), msg.Payload)
			out.SetContext(msg.Context()) // the trace continues
			if p := msg.Metadata.Get(levee.KeyPriority); p != "" {
				out.Metadata.Set(levee.KeyPriority, p)
			}
			stamp(out)
			if err := pub.Publish(topic, out); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}))

	// inventory: updates are batched; each message joins a batch and gets
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
	// The inventory section's batch settings, with the demo's telemetry.
	batcher, err := cfg.Batcher("inventory", inventoryBatch(sink),
		config.Deps{Logger: logger, TracerProvider: tel.tp, MeterProvider: tel.mp})
	if err != nil {
		return err
	}
	defer batcher.Close()
	router.AddConsumerHandler("inventory", topicReserve, sub, tracker.Consumer("inventory", batcher.Handler))

	// notifications: turn a paid order into an SMS request.
	// The router closes a handler's publisher when the handler stops; the
	// transport is shared and closed once, by closeTransport.
	router.AddHandler("notifications", topicPaid, sub, topicSMS, keepOpen{pub}, tracker.Handler("notifications", func(msg *message.Message) ([]*message.Message, error) {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return nil, dlq.Permanent(err)
		}
		payload, err := json.Marshal(SMS{To: order.Phone, Customer: order.Customer,
			Body: fmt.Sprintf("Order %s paid: %d.%02d EUR", order.ID, order.Amount/100, order.Amount%100)})
		if err != nil {
			return nil, err
		}
		req := message.NewMessage(watermill.NewUUID(), payload)
		req.Metadata.Set("customer_id", order.Customer) // the sms rate limit's key
		return []*message.Message{req}, nil
	}))

	// sms: send through the provider. Requests with an invalid number are
	// dead-lettered by the dlq slot (schemas/sms.json) before this runs.
	router.AddConsumerHandler("sms", topicSMS, sub, tracker.Consumer("sms", func(msg *message.Message) ([]*message.Message, error) {
		var s SMS
		if err := json.Unmarshal(msg.Payload, &s); err != nil {
			return nil, dlq.Permanent(err)
		}
		return nil, sms.Send(s.To, s.Body)
	}))

	// Watch the dead-letter topics: the Monitor records every dead letter
	// in a store (the `store:` section: in memory by default, Redis or
	// PostgreSQL with -store), where they are grouped, alerted on and
	// replayed (`levee dlq` reads the same store).
	sc, err := storeConfig(cfg, o.store, o.storePrefix)
	if err != nil {
		return err
	}
	store, closeStore, err := dlqstore.FromConfig(ctx, sc)
	if err != nil {
		return err
	}
	defer closeStore()
	monitor, err := dlqops.NewMonitor(store, dlqops.WithMeterProvider(tel.mp), dlqops.WithStoreTimeout(sc.StoreTimeout()))
	if err != nil {
		return err
	}
	// Per-group gauges (levee_dlq_group_dead_letters{group,status}): the
	// dashboard's "Dead letters per group" panel.
	gauges, err := dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(tel.mp), dlqops.WithGaugeMinInterval(time.Second))
	if err != nil {
		return err
	}
	defer gauges.Close()
	for _, t := range []string{topicOrders, topicReserve, topicPaid, topicSMS} {
		router.AddConsumerHandler("dlq-watch-"+t, t+".dlq", sub, func(msg *message.Message) error {
			if err := monitor.Handle(msg); err != nil {
				return err // Nack: nothing is lost when the store is down
			}
			return tracker.DeadLetterHandler(msg)
		})
	}

	// A shared store also counts failed attempts across instances, for the
	// dlq sections that say `attempts: shared`.
	attempts, _ := dlqstore.Attempts(store)
	deps := config.Deps{
		Publisher: pub, Logger: logger, TracerProvider: tel.tp, MeterProvider: tel.mp,
		System: caps.System, MaxInFlight: caps.MaxInFlight, AttemptStore: attempts,
		// Schemas are keyed by the plain topic names.
		Validator: func(topic string, payload []byte) error {
			if cfg.Schemas() == nil {
				return nil
			}
			return cfg.Schemas().Validate(names.unprefix(topic), payload)
		},
	}
	if caps.AckDeadline > 0 {
		// No wait may outlast the broker's ack deadline: hold at most 80%.
		deps.MaxHold = caps.AckDeadline * 8 / 10
	}
	applied, err := config.Apply(router, cfg, deps)
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
	go func() { publishErr <- intake(runCtx, pub, topicOrders, msgs, o.rate) }()

	var tl *timeline
	if b, ok := applied.Breaker("payments"); ok && o.outage > 0 {
		tl = sampleBreaker(runCtx, b, start)
	}

	total := len(msgs)
	settled := tracker.Wait(func() bool {
		paySettled, paid := tracker.Settled("payments")
		invSettled, _ := tracker.Settled("inventory")
		notSettled, notified := tracker.Settled("notifications")
		smsSettled, _ := tracker.Settled("sms")
		return paySettled >= total && invSettled >= paid && notSettled >= paid && smsSettled >= notified
	}, o.maxRun)
	elapsed := time.Since(start)
	fmt.Fprintf(out, "orders demo over %s (%d in flight per topic): %d orders (%d malformed, %d with a bad phone) in %s\n\n",
		caps.Kind, caps.MaxInFlight, total, o.malformed, o.badPhones, elapsed.Round(time.Millisecond))
	tracker.Print(out, handlerNames)
	fmt.Fprintln(out, "\npayments latency by priority (publish to paid; VIP orders have priority 9):")
	tracker.PrintPriorityWaits(out, "payments")
	if s, ok := applied.Scheduler("payments"); ok {
		printScheduler(out, s)
	}
	if o.outage > 0 {
		fmt.Fprintf(out, "\npayments per second (gateway outage %s from %s):\n", o.outage, o.outageAfter)
		tl.print(out, gateway.CallsPerSecond(start))
	}
	// A shared store keeps earlier runs' letters: this run's failed at or
	// after start.
	fmt.Fprintf(out, "\ndead-letter groups of this run (dlqops.Monitor -> %s store):\n", sc.StoreKind())
	if err := printGroups(ctx, out, store, start); err != nil {
		return err
	}
	if o.replayFixed && settled {
		if err := replayFixed(ctx, out, o, store, pub, gateway, tracker, start); err != nil {
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
		linger := time.NewTimer(o.linger)
		select {
		case <-linger.C:
		case <-ctx.Done(): // the caller ended the run early
			linger.Stop()
		}
	}
	if !settled {
		return fmt.Errorf("run did not settle within %s", o.maxRun)
	}
	return nil
}

// keepOpen is a publisher whose Close does nothing: the router closes the
// publisher of each handler that stops, and this one is shared.
type keepOpen struct{ message.Publisher }

func (keepOpen) Close() error { return nil }

// printGroups prints the groups of the dead letters that failed at or
// after start, largest first.
func printGroups(ctx context.Context, w io.Writer, store dlqops.Store, start time.Time) error {
	groups, err := store.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Since: start}, WindowStart: start})
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, g := range groups {
		sample := g.SampleError
		if len(sample) > 96 {
			sample = sample[:93] + "..."
		}
		fmt.Fprintf(w, "  %s  count %-3d new %-3d replayed %-3d %-10s %s\n      %s\n", g.Key, g.Count, g.New, g.Replayed,
			g.ErrorClass, strings.Join(g.Handlers, ","), sample)
	}
	return nil
}

// replayFixed lifts the gateway limit (the "fix") and replays the group of
// over-limit orders at a bounded rate, then waits until payments processed
// every replayed message.
func replayFixed(ctx context.Context, w io.Writer, o options, store dlqops.Store, pub message.Publisher, g *Gateway, t *Tracker, start time.Time) error {
	groups, err := store.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Since: start}})
	if err != nil {
		return err
	}
	var fixed *dlqops.Group
	for i := range groups {
		if strings.Contains(groups[i].SampleError, "exceeds the gateway limit") {
			fixed = &groups[i]
		}
	}
	if fixed == nil {
		fmt.Fprintln(w, "\nreplay: no over-limit group to replay")
		return nil
	}
	g.SetLimit(0)
	_, before := t.Settled("payments")
	r, err := dlqops.NewReplayer(store, pub, dlqops.WithReplayRate(50))
	if err != nil {
		return err
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Group: fixed.Key, Since: start}})
	if err != nil {
		return err
	}
	ok := t.Wait(func() bool { _, n := t.Settled("payments"); return n >= before+rep.Replayed }, o.maxRun)
	_, after := t.Settled("payments")
	fmt.Fprintf(w, "\nreplay of group %s (gateway limit lifted): %d replayed at 50/s in %s, %d held, %d failed; payments processed %d of them\n",
		fixed.Key, rep.Replayed, rep.Elapsed.Round(time.Millisecond), rep.Held, rep.Failed, after-before)
	if !ok {
		return fmt.Errorf("replayed messages were not processed within %s", o.maxRun)
	}
	return printGroups(ctx, w, store, start)
}

// printScheduler prints the payments scheduler's own wait figures.
func printScheduler(w io.Writer, s *priority.Scheduler) {
	st := s.Stats()
	fmt.Fprintf(w, "gateway scheduler: %s\n", s)
	for p := len(st.Levels) - 1; p >= 0; p-- {
		l := st.Levels[p]
		if l.Granted == 0 {
			continue
		}
		fmt.Fprintf(w, "  priority %d: %d granted, slot wait p50 %s p99 %s\n", p, l.Granted,
			l.Wait.Quantile(0.5).Round(time.Millisecond), l.Wait.Quantile(0.99).Round(time.Millisecond))
	}
}

// intake publishes msgs at rate per second (all at once for rate <= 0),
// stamping each with its publish time.
func intake(ctx context.Context, pub message.Publisher, topic string, msgs []*message.Message, rate float64) error {
	if rate <= 0 {
		stamp(msgs...)
		return pub.Publish(topic, msgs...)
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
		if err := pub.Publish(topic, m); err != nil {
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

// makeOrders builds the orders to publish: VIP orders carry priority 9,
// some phones are invalid, and malformed orders are spread among them.
func makeOrders(o options) []*message.Message {
	var msgs []*message.Message
	vipEvery := 0
	if o.vipShare > 0 {
		vipEvery = int(1 / o.vipShare)
	}
	badEvery := 0
	if o.badPhones > 0 {
		badEvery = o.orders / o.badPhones
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
		if o.big > 0 && i%(o.orders/o.big) == o.orders/o.big/2 && i/(o.orders/o.big) < o.big {
			order.Amount = 250000 + i // 2,500 EUR and more: over the default gateway limit
		}
		if badEvery > 0 && i%badEvery == badEvery-1 && i/badEvery < o.badPhones {
			order.Phone = fmt.Sprintf("0049-%d", i) // not E.164: the SMS is rejected by its schema
		}
		payload, _ := json.Marshal(order)
		m := message.NewMessage(watermill.NewUUID(), payload)
		if order.VIP {
			priority.Set(m, priority.MaxPriority)
		}
		msgs = append(msgs, m)
	}
	for i := 0; i < o.malformed; i++ {
		var payload string
		switch i % 3 {
		case 0:
			payload = fmt.Sprintf(`{"id": "bad-%d", "items": [`, i) // truncated JSON
		case 1:
			payload = fmt.Sprintf(`{"id": "bad-%d", "customer": "c-1", "amount_cents": -5, "items": []}`, i)
		default:
			payload = fmt.Sprintf(`{"id": "bad-%d", "customer": "c-1", "amount_cents": 100}`, i) // no items
		}
		bad := message.NewMessage(watermill.NewUUID(), []byte(payload))
		// Spread the malformed ones among the good ones.
		at := (i*7919 + 13) % (len(msgs) + 1)
		msgs = append(msgs[:at], append([]*message.Message{bad}, msgs[at:]...)...)
	}
	return msgs
}
