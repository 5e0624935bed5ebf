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

// What the file and the registered handlers cannot mean together fails
// Run with the file's line, before a message is consumed: a dead-letter
// topic that is the handler's own topic (its letters would come back to
// it, and the monitor would compete with it for its messages), and a
// batch section on a handler registered with Handle (it would be ignored).
func TestHandlersTheFileContradictsFailRun(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		batch      bool
		want       string
	}{
		{"dlq topic is the subscribed topic", "handlers:\n  audit:\n    recover: true\n    dlq: {topic: events}\n", false,
			`levee.yaml:4: handlers.audit.dlq.topic: "events" is the topic handler "audit" consumes`},
		{"batch section under Handle", "handlers:\n  audit:\n    recover: true\n    batch: {max_size: 10}\n", false,
			`levee.yaml:4: handlers.audit.batch: handler "audit" is registered with Handle`},
		{"batch section under HandleBatch", "handlers:\n  audit:\n    recover: true\n    batch: {max_size: 10}\n", true, ""},
		{"default dlq topic", "handlers:\n  audit:\n    dlq: {}\n", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := service.New(context.Background(), parse(t, tc.yaml), config.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			if tc.batch {
				if err := svc.HandleBatch("audit", "events", func(context.Context, []*message.Message) error { return nil }); err != nil {
					t.Fatal(err)
				}
			} else {
				svc.Handle("audit", "events", func(*message.Message) error { return nil })
			}
			runRefused(t, svc, tc.want)
		})
	}
}

// runRefused runs svc and checks that Run fails at once with an
// ErrInvalidConfig containing want, or, when want is "", that the router
// starts (and then stops it).
func runRefused(t *testing.T, svc *service.Service, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if want == "" {
		go func() { <-svc.Running(); cancel() }()
	}
	err := svc.Run(ctx)
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v, want the service to run", err)
	case want != "" && (!errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), want)):
		t.Fatalf("got %v, want ErrInvalidConfig with %q", err, want)
	}
}
