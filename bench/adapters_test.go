package bench

import (
	"context"
	"strconv"
	"testing"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/amqp"
)

func adaptersNoop(*message.Message) ([]*message.Message, error) { return nil, nil }

// BenchmarkAdaptersRetryAfterMiddleware: the per-message cost of the
// RetryAfter hook on the success path against the bare handler.
func BenchmarkAdaptersRetryAfterMiddleware(b *testing.B) {
	msg := message.NewMessage("1", []byte("p"))
	for _, bc := range []struct {
		name string
		h    message.HandlerFunc
	}{
		{"bare", adaptersNoop},
		{"retry_after", adapters.RetryAfterMiddleware(adaptersNoop)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = bc.h(msg)
			}
		})
	}
}

// BenchmarkAdaptersFanIn: consuming from GoChannel directly against through
// the in-flight limiter (NewLimiter, 8 slots), 8 consumers acking at once.
func BenchmarkAdaptersFanIn(b *testing.B) {
	for _, limited := range []bool{false, true} {
		name := "gochannel_direct"
		if limited {
			name = "gochannel_limiter_8"
		}
		b.Run(name, func(b *testing.B) {
			gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 64}, nil)
			var sub message.Subscriber = gc
			if limited {
				f, err := adapters.NewLimiter(gc, 8)
				if err != nil {
					b.Fatal(err)
				}
				sub = f
			}
			ctx, cancel := context.WithCancel(context.Background())
			ch, err := sub.Subscribe(ctx, "t")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{}, 8)
			for range 8 {
				go func() {
					for m := range ch {
						m.Ack()
						done <- struct{}{}
					}
				}()
			}
			payload := []byte("p")
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					_ = gc.Publish("t", message.NewMessage(strconv.Itoa(i), payload))
				}
			}()
			for i := 0; i < b.N; i++ {
				<-done
			}
			b.StopTimer()
			cancel()
			_ = sub.Close()
			_ = gc.Close()
		})
	}
}

// BenchmarkAdaptersAMQPMarshal: Levee's AMQP marshaler (priority mapping)
// against watermill-amqp's DefaultMarshaler.
func BenchmarkAdaptersAMQPMarshal(b *testing.B) {
	msg := message.NewMessage("1", []byte("payload"))
	msg.Metadata.Set(adapters.MetadataPriority, "7")
	msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	for _, bc := range []struct {
		name string
		m    wamqp.Marshaler
	}{
		{"watermill_default", wamqp.DefaultMarshaler{}},
		{"levee", amqp.Marshaler{MaxPriority: 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.m.Marshal(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
