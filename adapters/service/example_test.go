package service_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// Example wires a router from a YAML file end to end: the transport
// (GoChannel), the payments handler wrapped in the stack its section
// describes (recover, dlq with retries, timeout), and a poison message
// dead-lettered after its three attempts.
func Example() {
	cfg, err := config.Load("testdata/levee.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := service.New(ctx, cfg, config.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	attempts := 0
	done := make(chan string, 1)
	svc.Handle("payments", "payments", func(msg *message.Message) error {
		if string(msg.Payload) == "poison" {
			attempts++
			return errors.New("card declined")
		}
		done <- string(msg.Payload)
		return nil
	})
	letters, err := svc.Transport.Subscriber.Subscribe(ctx, "payments.dlq")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()

	_ = svc.Transport.Publisher.Publish("payments", message.NewMessage("1", []byte("order-1")))
	fmt.Println("paid:", <-done)
	_ = svc.Transport.Publisher.Publish("payments", message.NewMessage("2", []byte("poison")))
	letter := <-letters
	letter.Ack()
	fmt.Printf("dead letter: %s after %s attempts (%s: %s)\n", letter.Payload,
		letter.Metadata.Get(dlq.KeyAttempts), letter.Metadata.Get(dlq.KeyErrorClass), letter.Metadata.Get(dlq.KeyError))
	fmt.Println("handler attempts:", attempts)
	// Output:
	// paid: order-1
	// dead letter: poison after 3 attempts (exhausted: card declined)
	// handler attempts: 3
}
