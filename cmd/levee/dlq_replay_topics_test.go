package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// TestDLQReplayTopics: `levee dlq replay` publishes only to the topics of
// store.replay_topics and --allow-topic, or by default to T for a letter
// recorded from T.dlq; a refused letter stays new with its reason.
func TestDLQReplayTopics(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		args       []string
		code       int
		wantTopics []string // published to, sorted
		wantHeld   []string // ids left new with a topic reason
	}{
		{name: "default pairs T with T.dlq", args: []string{"replay", "--all", "--rate", "0"}, code: 0,
			wantTopics: []string{"orders"}, wantHeld: []string{"forged", "shared"}},
		{name: "flag", args: []string{"replay", "--all", "--rate", "0", "--allow-topic", "orders", "--allow-topic", "payments"}, code: 0,
			wantTopics: []string{"orders", "payments"}, wantHeld: []string{"forged"}},
		{name: "config", config: "  replay_topics: [payments]\n", args: []string{"replay", "--all", "--rate", "0"}, code: 0,
			wantTopics: []string{"payments"}, wantHeld: []string{"forged", "own"}},
		{name: "config and flag add up", config: "  replay_topics: [payments]\n", args: []string{"replay", "--all", "--rate", "0", "--allow-topic", "orders"}, code: 0,
			wantTopics: []string{"orders", "payments"}, wantHeld: []string{"forged"}},
		{name: "blank flag", args: []string{"replay", "--allow-topic", " "}, code: 2},
		{name: "blank in config", config: "  replay_topics: [\"\"]\n", args: []string{"replay", "--all"}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, _, pub, out, errb := dlqTestCmd(t)
			s := dlqops.NewMemStore()
			own := dlqtest.Letter("own", "cccccccccccccccc", "orders", "ship", 0)
			shared := dlqtest.Letter("shared", "cccccccccccccccc", "payments", "pay", time.Second)
			shared.DLQTopic = "all.dlq"
			// published straight onto orders.dlq, naming another topic
			forged := dlqtest.Letter("forged", "cccccccccccccccc", "admin.commands", "ship", 2*time.Second)
			forged.DLQTopic = "orders.dlq"
			if _, err := s.Add(context.Background(), own, shared, forged); err != nil {
				t.Fatal(err)
			}
			cmd.openStore = func(context.Context, dlqops.StoreConfig) (dlqops.Store, func() error, error) {
				return s, func() error { return nil }, nil
			}
			if tt.config != "" {
				cmd.configPath = dlqWriteConfig(t, "transport: {kind: amqp, amqp: {url: \"amqp://guest:guest@127.0.0.1:5672/\"}}\n"+
					"store:\n  kind: postgres\n  url: \"postgres://postgres@127.0.0.1:5432/test\"\n"+tt.config)
			}
			code := cmd.run(context.Background(), tt.args)
			if code != tt.code {
				t.Fatalf("exit %d want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errb)
			}
			if code != 0 {
				return
			}
			got := slices.Sorted(slices.Values(pub.topics))
			if !slices.Equal(got, tt.wantTopics) {
				t.Errorf("published to %v want %v", got, tt.wantTopics)
			}
			for _, id := range tt.wantHeld {
				dl, err := s.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if dl.Status != dlqops.StatusNew || !strings.Contains(dl.Reason, "replay topic not allowed") {
					t.Errorf("%s: status %s reason %q, want new and held by its topic", id, dl.Status, dl.Reason)
				}
				if !strings.Contains(out.String(), id) {
					t.Errorf("report does not name held %s:\n%s", id, out)
				}
			}
		})
	}
}
