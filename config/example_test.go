package config_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// Parse validates a file and Describe prints each handler's stack.
func ExampleParse() {
	yaml := []byte(`
handlers:
  payments:
    timeout: 2s
    recover: true
`)
	cfg, err := config.Parse("levee.yaml", yaml, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(cfg.Describe())

	_, err = config.Parse("levee.yaml", []byte("handlers:\n  payments:\n    timeout: 3x\n"), nil, nil)
	fmt.Println(err)
	// Output:
	// handler payments:
	//   1. recover
	//   2. timeout 2s
	// levee.yaml:3: handlers.payments.timeout: "3x" is not a duration (use e.g. 250ms, 5s, 1m)
}

// A router wired from testdata/example.yaml, end to end on Watermill's
// in-memory GoChannel: payments fails once (retried by its dlq section),
// refuses a malformed order (dead-lettered), and forwards the paid orders
// to inventory, whose batch section groups the writes (Config.Batcher).
func Example() {
	cfg, err := config.Load("testdata/example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	defer pubSub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		fmt.Println(err)
		return
	}
	deps := config.Deps{Publisher: pubSub, Logger: logger, MaxInFlight: 1}

	var (
		mu       sync.Mutex
		failed   bool
		reserved []string
		done     = make(chan string, 3) // "reserved" or "dead-lettered"
	)
	router.AddHandler("payments", "orders", pubSub, "reserve", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		switch order := string(msg.Payload); {
		case order == "":
			return nil, dlq.Permanent(errors.New("empty order"))
		case order == "order-2" && !failed:
			failed = true
			return nil, errors.New("gateway timeout") // transient: retried
		}
		return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
	})
	// The handler configured in YAML: its batch section and deps, in one call.
	batcher, err := cfg.Batcher("inventory", func(_ context.Context, msgs []*message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			reserved = append(reserved, string(m.Payload))
			done <- "reserved"
		}
		return nil
	}, deps)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer batcher.Close()
	router.AddConsumerHandler("inventory", "reserve", pubSub, batcher.NoPublishHandler)
	router.AddConsumerHandler("dead-letters", "orders.dlq", pubSub, func(msg *message.Message) error {
		fmt.Println("dead-lettered:", msg.Metadata.Get(dlq.KeyErrorClass), msg.Metadata.Get(dlq.KeyError))
		done <- "dead-lettered"
		return nil
	})

	applied, err := config.Apply(router, cfg, deps)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer applied.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	for _, order := range []string{"order-1", "order-2", ""} {
		if err := pubSub.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte(order))); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 3 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			fmt.Println("timed out")
			return
		}
	}
	_ = router.Close()

	mu.Lock()
	sort.Strings(reserved)
	fmt.Println("reserved:", strings.Join(reserved, " "))
	mu.Unlock()
	r, _ := applied.Retrier("payments")
	fmt.Println("payments attempts:", r.Backoff().MaxAttempts)
	fmt.Print(applied.Stack("payments").Describe())
	// Output:
	// dead-lettered: permanent empty order
	// reserved: order-1 order-2
	// payments attempts: 3
	// 1. recover
	// 2. dlq topic=<topic>.dlq attempts=3 backoff=1ms..5ms x2
	// 3. timeout 2s
}
