package gochannel_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/gochannel"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

// New alone (without the facade) gives a working transport capped at the
// concurrency, and Parts.Close stops it.
func TestNewStandalone(t *testing.T) {
	synctest.Test(t, testNewStandalone)
}

func testNewStandalone(t *testing.T) {
	p, err := gochannel.New(gochannel.Config{Persistent: true}, transport.Settings{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := transport.Capabilities{Kind: "gochannel", System: "gochannel", MaxInFlight: 2}
	if p.Capabilities != want {
		t.Fatalf("got %+v, want %+v", p.Capabilities, want)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := p.Publisher.Publish("t", message.NewMessage(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := p.Subscriber.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	held := []*message.Message{<-ch, <-ch}
	synctest.Wait() // every forwarder is blocked: none holds a third message
	select {
	case m := <-ch:
		t.Fatalf("a third message %s was handed over with 2 unacked", m.UUID)
	default:
	}
	for _, m := range held {
		m.Ack()
	}
	(<-ch).Ack()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
