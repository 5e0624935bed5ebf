package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/middleware"
)

func middlewareNoop(*message.Message) ([]*message.Message, error) { return nil, nil }

// BenchmarkMiddlewareRecoverTimeout compares one handler call through a bare
// handler, Watermill's Recoverer+Timeout, and Levee's Stack with
// recover+timeout.
func BenchmarkMiddlewareRecoverTimeout(b *testing.B) {
	to, err := middleware.NewTimeout(time.Second)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		h    message.HandlerFunc
	}{
		{"bare", middlewareNoop},
		{"watermill_recoverer_timeout", middleware.Chain(wmw.Recoverer, wmw.Timeout(time.Second))(middlewareNoop)},
		{"levee_stack_recover_timeout", middleware.NewStack().Recover(middleware.Recover).Timeout(to.Middleware).Middleware(middlewareNoop)},
		{"levee_stack_recover", middleware.NewStack().Recover(middleware.Recover).Middleware(middlewareNoop)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			msg := message.NewMessage("1", []byte("payload"))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				// A fresh context per delivery, as a router gives: Watermill's
				// Timeout never restores the context, so reusing one would
				// nest timeouts without end.
				msg.SetContext(ctx)
				if _, err := c.h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := message.NewMessage("1", []byte("payload"))
				ctx := context.Background()
				for pb.Next() {
					msg.SetContext(ctx)
					if _, err := c.h(msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMiddlewareRouterGoChannel measures end-to-end router throughput
// over GoChannel: N messages published, all acked, bare vs the Levee Stack
// (recover+timeout) attached with Apply.
func BenchmarkMiddlewareRouterGoChannel(b *testing.B) {
	for _, withStack := range []bool{false, true} {
		name := "bare"
		if withStack {
			name = "levee_stack_recover_timeout"
		}
		b.Run(name, func(b *testing.B) {
			const batch = 1000
			logger := watermill.NopLogger{}
			ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: batch}, logger)
			defer ps.Close()
			r, err := message.NewRouter(message.RouterConfig{}, logger)
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{}, batch)
			r.AddConsumerHandler("h", "t", ps, func(*message.Message) error { done <- struct{}{}; return nil })
			if withStack {
				cfg, err := config.Parse("bench.yaml", []byte("handlers:\n  h:\n    recover: true\n    timeout: 1s\n"), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				a, err := config.Apply(r, cfg, config.Deps{})
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
			}
			ctx, cancel := context.WithCancel(context.Background())
			runDone := make(chan struct{})
			go func() { _ = r.Run(ctx); close(runDone) }()
			<-r.Running()
			msgs := make([]*message.Message, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				k := min(batch, b.N-n)
				for i := 0; i < k; i++ {
					msgs[i] = message.NewMessage(fmt.Sprint(n+i), nil)
				}
				if err := ps.Publish("t", msgs[:k]...); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < k; i++ {
					<-done
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cancel()
			<-runDone
		})
	}
}
