package service_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
)

// TestFleetStoreDownAtStart: a replica that starts while its fleet store
// is down runs as its file says it should during an outage (here
// on_store_error: local, its share of the fleet rate) and logs that the
// store is unreachable; service.New failed with "redis unreachable", so a
// replica restarted during a Redis outage could not start at all.
func TestFleetStoreDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: every dial is refused
	y := fmt.Sprintf("transport: {kind: gochannel}\nfleet: {store: %q}\nhandlers:\n  h:\n    fleet: {on_store_error: local, ratelimit: {rate: 100/s}}\n",
		"redis://"+addr+"/0")
	logger := watermill.NewCaptureLogger()
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{Logger: logger})
	if err != nil {
		t.Fatalf("New with the fleet store down: %v", err)
	}
	defer svc.Close()
	// New logs it; read the log before Run starts, since the capture
	// logger hands out its live map, which the router writes to while it
	// runs.
	found := false
	for _, m := range logger.Captured()[watermill.ErrorLogLevel] {
		found = found || strings.Contains(m.Msg, "fleet store unreachable at start")
	}
	if !found {
		t.Errorf("no error logged for the unreachable fleet store: %v", logger.Captured()[watermill.ErrorLogLevel])
	}
	const sent = 3
	got := make(chan string, sent)
	svc.Handle("h", "h", func(m *message.Message) error { got <- m.UUID; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-svc.Running():
	}
	for i := range sent {
		if err := svc.Transport.Publisher.Publish("h", message.NewMessage(fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	for range sent {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("a message was not handled in 10s with the fleet store down and on_store_error: local")
		}
	}
}
