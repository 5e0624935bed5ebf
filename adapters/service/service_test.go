package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
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
