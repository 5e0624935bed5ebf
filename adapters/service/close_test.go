package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
)

// TestCloseWaitsForCloseInProgress: a Close called while another is in
// progress (a signal handler's and a deferred one) returns once the first
// has closed the router, the stacks, the transport and the store. It
// returned nil at once, so a main that returned then exited with a
// handler still running and the transport still open (a Kafka
// consumer's offsets not committed, held messages not given back). The
// pause below only gives a wrong Close the time to return: with the fix
// the test passes whatever its length.
func TestCloseWaitsForCloseInProgress(t *testing.T) {
	svc, err := service.New(context.Background(), parse(t, "transport: {kind: gochannel}\nhandlers:\n  pay:\n    recover: true\n"), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	release, in := make(chan struct{}), make(chan struct{})
	var released atomic.Bool
	var calls atomic.Int32
	var held context.Context
	svc.Handle("pay", "orders", func(msg *message.Message) error {
		if calls.Add(1) == 1 {
			held = msg.Context()
			close(in)
		}
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	if err := svc.Transport.Publisher.Publish("orders", message.NewMessage("m1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	<-in
	first := make(chan error, 1)
	go func() { first <- svc.Close() }() // waits for the handler in progress
	<-held.Done()                        // the router's Close began
	second := make(chan bool, 1)
	go func() {
		if err := svc.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		second <- released.Load()
	}()
	time.Sleep(100 * time.Millisecond)
	released.Store(true)
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Close: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	if !<-second {
		t.Error("the second Close returned while the first waited for the handler in progress")
	}
}
