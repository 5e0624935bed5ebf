package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestUnregisteredHandlerFailsRun(t *testing.T) {
	svc, err := service.New(context.Background(), parse(t, "handlers:\n  payments:\n    recover: true\n"), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	svc.Handle("other", "other", func(*message.Message) error { return nil })
	err = svc.Run(context.Background())
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "payments") {
		t.Fatalf("got %v, want ErrInvalidConfig naming payments", err)
	}
}

func TestHoldAboveTheDeadlineFailsNew(t *testing.T) {
	y := "transport: {kind: redis, redis: {addr: \"127.0.0.1:1\"}, ack_deadline: 10s}\nhandlers:\n  h:\n    ratelimit: {rate: 5/s, max_wait: 1m}\n"
	_, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "levee.yaml:4: handlers.h.ratelimit.max_wait") {
		t.Fatalf("got %v, want the max_wait located and rejected before connecting", err)
	}
}

func TestBatchHandlerFromTheFile(t *testing.T) {
	y := "transport: {kind: gochannel, concurrency: 4}\nhandlers:\n  inv:\n    batch: {max_size: 2, max_wait: 1h, max_in_flight: 1}\n"
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	sizes := make(chan int, 1)
	if err := svc.HandleBatch("inv", "inv", func(_ context.Context, msgs []*message.Message) error {
		sizes <- len(msgs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := svc.Deps(); d.MaxInFlight != 4 || d.System != "gochannel" {
		t.Fatalf("deps from the transport: got %+v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	for _, id := range []string{"a", "b"} {
		if err := svc.Transport.Publisher.Publish("inv", message.NewMessage(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-sizes; got != 2 {
		t.Fatalf("got a batch of %d, want max_size 2", got)
	}
}

// A file with a store section gets its dead letters recorded there, as
// `levee dlq` reads them, without the service adding a monitor itself.
func TestDeadLettersRecordedInTheStore(t *testing.T) {
	y := "transport: {kind: gochannel}\nstore: {kind: memory}\nhandlers:\n  pay:\n    dlq: {retry: {max_attempts: 2, initial: 1ms, max: 1ms}}\n"
	for _, watch := range []bool{true, false} {
		t.Run(fmt.Sprint("watch=", watch), func(t *testing.T) {
			svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			if !svc.WatchDeadLetters {
				t.Fatal("WatchDeadLetters is off with a store section")
			}
			svc.WatchDeadLetters = watch
			svc.Handle("pay", "orders", func(*message.Message) error { return errors.New("card declined") })
			// A second subscriber of the dead-letter topic says when the
			// letter was published (GoChannel gives it to every subscriber).
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			letters, err := svc.Transport.Subscriber.Subscribe(ctx, "orders.dlq")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = svc.Run(ctx) }()
			<-svc.Running()
			if err := svc.Transport.Publisher.Publish("orders", message.NewMessage("m1", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			(<-letters).Ack()
			_, monitored := svc.Router.Handlers()[service.MonitorHandlerPrefix+"orders.dlq"]
			if monitored != watch {
				t.Fatalf("monitor handler present: %v, want %v", monitored, watch)
			}
			if !watch {
				return
			}
			var recs []dlqops.Record
			for deadline := time.Now().Add(10 * time.Second); len(recs) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if recs, err = svc.Store.List(ctx, dlqops.Filter{}); err != nil {
					t.Fatal(err)
				}
			}
			if len(recs) != 1 || recs[0].OriginalUUID != "m1" || recs[0].Handler != "pay" || recs[0].DLQTopic != "orders.dlq" {
				t.Fatalf("the store holds %+v, want the letter of m1 from pay", recs)
			}
		})
	}
}

func TestNoStoreSectionNoMonitor(t *testing.T) {
	svc, err := service.New(context.Background(), parse(t, "handlers:\n  pay:\n    dlq: {}\n"), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if svc.WatchDeadLetters {
		t.Fatal("WatchDeadLetters is on without a store section")
	}
}
