//go:build integration

package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestRunWarnsPostgresConnections: over PostgreSQL each message in flight
// holds one of the subscriber's connections whatever its handler, so a
// service whose handlers and monitored dead-letter topics have more
// consumers than that logs a warning with the numbers when it runs
// (handlers registered in code count, which `levee config check` cannot
// see); one whose max_conns covers them logs none. Before, nothing said
// that 6 handlers and their 6 dead-letter topics shared 8 connections.
func TestRunWarnsPostgresConnections(t *testing.T) {
	brokertest.SkipIfDown(t, "127.0.0.1:5432")
	for _, tc := range []struct {
		name, maxConns, want string
	}{
		{"default max_conns", "", "levee/service: warning: over postgres the service's 6 handlers and 6 monitored dead-letter topics at concurrency 1 are 12 consumers, " +
			"and each message in flight holds one of the subscriber's 8 connections (max_conns 12 less the publisher's 4): at most 8 messages are in flight"},
		{"max_conns covers them", ", max_conns: 16", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := fmt.Sprintf("transport: {kind: postgres, postgres: {url: %q%s}}\nstore: {kind: memory}\nhandlers:\n", brokertest.PostgresURL(), tc.maxConns)
			for i := range 6 {
				y += fmt.Sprintf("  h%d:\n    dlq: {}\n", i)
			}
			logger := watermill.NewCaptureLogger()
			svc, err := service.New(context.Background(), parse(t, y), config.Deps{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			prefix := brokertest.Name("conns") + "_"
			var topics []string
			for i := range 6 {
				name := fmt.Sprintf("h%d", i)
				topics = append(topics, prefix+name, prefix+name+".dlq")
				svc.Handle(name, prefix+name, func(*message.Message) error { return nil })
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- svc.Run(ctx) }()
			select {
			case <-svc.Running():
			case err := <-ran:
				t.Fatalf("Run: %v", err)
			}
			cancel()
			<-ran
			_ = svc.Transport.DeleteTopics(context.Background(), topics...)
			// Read what was logged once nothing logs any more.
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range logger.Captured()[watermill.InfoLogLevel] {
				if strings.Contains(m.Msg, "consumers, and each message in flight") {
					got = append(got, m.Msg)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("got %q, want no warning about connections", got)
			case tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want)):
				t.Errorf("got %q, want one warning starting %q", got, tc.want)
			}
		})
	}
}
