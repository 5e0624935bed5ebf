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

	"github.com/levee-dev/levee/middleware"
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
	maxRun      time.Duration
	seed        uint64
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 300, "number of orders to publish")
	flag.Float64Var(&o.vipShare, "vip", 0.1, "share of VIP orders (0..1)")
	flag.IntVar(&o.malformed, "malformed", 0, "number of extra malformed orders")
	flag.DurationVar(&o.outage, "outage", 0, "payment gateway outage length (e.g. 5s)")
	flag.DurationVar(&o.outageAfter, "outage-after", 500*time.Millisecond, "when the outage starts")
	flag.Float64Var(&o.transient, "transient", 0, "share of payment calls failing transiently (0..1)")
	flag.DurationVar(&o.service, "service", 2*time.Millisecond, "payment gateway service time")
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
	router.AddConsumerHandler("inventory", topicPaid, pubsub, func(msg *message.Message) error {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return err
		}
		for _, it := range order.Items {
			inventory.Reserve(it.SKU, it.Qty)
		}
		return nil
	})
	router.AddConsumerHandler("notifications", topicPaid, pubsub, func(msg *message.Message) error {
		order, err := decodeOrder(msg.Payload)
		if err != nil {
			return err
		}
		return sms.Send(order.Phone, fmt.Sprintf("Order %s paid: %d.%02d EUR", order.ID, order.Amount/100, order.Amount%100))
	})

	applied, err := middleware.Apply(router, cfg, middleware.Deps{Publisher: pubsub, Logger: logger})
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
	if err := pubsub.Publish(topicOrders, msgs...); err != nil {
		return fmt.Errorf("publishing orders: %w", err)
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
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}

	fmt.Fprintf(out, "orders demo: %d orders (%d malformed) in %s\n\n", total, o.malformed, elapsed.Round(time.Millisecond))
	tracker.Print(out, []string{"payments", "inventory", "notifications"})
	fmt.Fprintln(out, "\npayments first-call wait by priority:")
	tracker.PrintPriorityWaits(out, "payments")
	if o.outage > 0 {
		fmt.Fprintf(out, "\npayment gateway calls per second (outage %s from %s):\n", o.outage, o.outageAfter)
		for s, n := range gateway.CallsPerSecond(start) {
			fmt.Fprintf(out, "  %3ds %6d\n", s, n)
		}
	}
	count, rate := sms.Rate()
	fmt.Fprintf(out, "\nSMS sent: %d (achieved %.1f/s); units reserved: %d\n", count, rate, inventory.Total())
	if !settled {
		return fmt.Errorf("run did not settle within %s", o.maxRun)
	}
	return nil
}

// makeOrders builds the orders to publish: VIP orders carry levee_priority 9.
func makeOrders(o options) []*message.Message {
	var msgs []*message.Message
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
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
		m.Metadata.Set(metaPublishedAt, now)
		if order.VIP {
			m.Metadata.Set("levee_priority", "9")
		}
		msgs = append(msgs, m)
	}
	for i := 0; i < o.malformed; i++ {
		m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"id": "bad-%d", "items": [`, i)))
		m.Metadata.Set(metaPublishedAt, now)
		msgs = append(msgs, m)
	}
	return msgs
}
