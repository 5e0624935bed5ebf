package transport_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/transport"
)

func TestSettingsWithDefaults(t *testing.T) {
	got := transport.Settings{}.WithDefaults()
	if got.Concurrency != 1 || got.AckDeadline != 30*time.Second || got.DialTimeout != 5*time.Second || got.Logger == nil {
		t.Fatalf("got %+v", got)
	}
	if g := got.Group(); g != "levee" {
		t.Fatalf("got group %q, want levee", g)
	}
	set := transport.Settings{Concurrency: 8, ConsumerGroup: "billing", AckDeadline: time.Second, DialTimeout: 2 * time.Second}.WithDefaults()
	if set.Concurrency != 8 || set.Group() != "billing" || set.AckDeadline != time.Second || set.DialTimeout != 2*time.Second {
		t.Fatalf("got %+v", set)
	}
}

type closer struct {
	name  string
	order *[]string
	err   error
}

func (c closer) Close() error { *c.order = append(*c.order, c.name); return c.err }

func (c closer) Publish(string, ...*message.Message) error { return nil }

func (c closer) Subscribe(context.Context, string) (<-chan *message.Message, error) { return nil, nil }

func TestPartsCloseOrder(t *testing.T) {
	var order []string
	boom := errors.New("boom")
	p := transport.Parts{
		Publisher:  closer{"publisher", &order, nil},
		Subscriber: closer{"subscriber", &order, boom},
		Closers:    []func() error{closer{"conn", &order, nil}.Close},
	}
	err := p.Close()
	if want := []string{"subscriber", "publisher", "conn"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("got order %v, want %v", order, want)
	}
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom joined", err)
	}
}
