package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// The handlers below stand for a service's code.

var errDeclined = errors.New("declined")

func pay(*message.Message) error { return dlq.Permanent(errDeclined) }

func invoice(context.Context, []*message.Message) error { return dlq.Permanent(errDeclined) }

// TestLettersNameTheHandler: a service's dead letters name the function
// given to Handle or HandleBatch (which Watermill and the batcher wrap),
// with Levee layers between the dlq and it.
func TestLettersNameTheHandler(t *testing.T) {
	y := `transport: {kind: gochannel}
handlers:
  pay:
    recover: true
    dlq: {topic: svcloc.dlq, retry: {max_attempts: 1}}
    timeout: 2s
  inv:
    dlq: {topic: svcloc.dlq, retry: {max_attempts: 1}}
    timeout: 2s
    batch: {max_size: 1, max_wait: 1ms}
`
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	svc.Handle("pay", "svcloc.pay", pay)
	if err := svc.HandleBatch("inv", "svcloc.inv", invoice); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	letters, err := svc.Transport.Subscriber.Subscribe(ctx, "svcloc.dlq")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	for _, topic := range []string{"svcloc.pay", "svcloc.inv"} {
		if err := svc.Transport.Publisher.Publish(topic, message.NewMessage(topic, nil)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"pay": "github.com/levee-dev/levee/adapters/service_test.pay (",
		"inv": "github.com/levee-dev/levee/adapters/service_test.invoice (",
	}
	for len(want) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no letter of %v", want)
		case dl := <-letters:
			dl.Ack()
			name, loc := dl.Metadata[dlq.KeyHandler], dl.Metadata[dlq.KeyCodeLocation]
			if w, ok := want[name]; !ok || !strings.HasPrefix(loc, w) || !strings.Contains(loc, "location_test.go:") {
				t.Errorf("%s: %s = %q, want %q… in location_test.go", name, dlq.KeyCodeLocation, loc, want[name])
			}
			delete(want, name)
		}
	}
}
