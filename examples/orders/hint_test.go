package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// hintFile is what storeHint tells to put in FILE: its indented lines.
func hintFile(hint string) string {
	var b strings.Builder
	for _, l := range strings.Split(hint, "\n") {
		if strings.HasPrefix(l, "  ") {
			b.WriteString(strings.TrimPrefix(l, "  ") + "\n")
		}
	}
	return b.String()
}

// TestStoreHintGivesAReplayableFile: after a run over a broker with
// -keep, the FILE the demo tells to give `levee dlq` holds the run's
// transport as well as its store, so that `levee dlq replay` publishes to
// the kept topics (it held only the store section, and the replay said
// the transport was gochannel); the AMQP queues' max_priority comes with
// it (a queue declared with other arguments fails with
// PRECONDITION_FAILED). An in-process transport is said not to be
// replayable, rather than to need -keep.
func TestStoreHintGivesAReplayableFile(t *testing.T) {
	pg := dlqops.StoreConfig{Kind: dlqops.StoreKindPostgres, URL: "postgres://postgres@127.0.0.1:5432/test", Schema: "levee_orders"}
	for _, kind := range []string{"amqp", "nats", "redis", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			tc, err := loopback(kind)
			if err != nil {
				t.Fatal(err)
			}
			hint := storeHint(pg, tc, true)
			path := filepath.Join(t.TempDir(), "levee.yaml")
			if err := os.WriteFile(path, []byte(hintFile(hint)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatalf("the hint's FILE does not load: %v\n%s", err, hint)
			}
			got, err := adapters.FromConfig(cfg)
			if err != nil {
				t.Fatalf("its transport section: %v\n%s", err, hint)
			}
			if got.Kind != kind {
				t.Fatalf("its transport is %q, want %q:\n%s", got.Kind, kind, hint)
			}
			if sc, ok := cfg.Store(); !ok || sc.Kind != pg.Kind || sc.Schema != pg.Schema {
				t.Fatalf("its store is %+v, want %+v:\n%s", sc, pg, hint)
			}
			switch kind {
			case "amqp":
				if got.AMQP.MaxPriority == nil || *got.AMQP.MaxPriority != *tc.AMQP.MaxPriority {
					t.Errorf("amqp max_priority %v, want %d:\n%s", got.AMQP.MaxPriority, *tc.AMQP.MaxPriority, hint)
				}
				if strings.Contains(hint, "guest:guest") || !strings.Contains(hint, "hidden here") {
					t.Errorf("the password is printed, or its hiding is not said:\n%s", hint)
				}
			case "redis":
				if got.Redis.Addr != tc.Redis.Addr {
					t.Errorf("redis addr %q, want %q", got.Redis.Addr, tc.Redis.Addr)
				}
			case "nats":
				if got.NATS.URL != tc.NATS.URL {
					t.Errorf("nats url %q, want %q", got.NATS.URL, tc.NATS.URL)
				}
			case "postgres":
				if got.Postgres.URL != tc.Postgres.URL {
					t.Errorf("postgres url %q, want %q", got.Postgres.URL, tc.Postgres.URL)
				}
			}
			if !strings.Contains(storeHint(pg, tc, false), "run with -keep to replay") {
				t.Errorf("without -keep the hint does not say that replaying needs it:\n%s", storeHint(pg, tc, false))
			}
		})
	}
	for _, kind := range []string{"gochannel", "kafka"} { // the demo's Kafka is its in-process cluster
		t.Run(kind, func(t *testing.T) {
			tc, err := loopback(kind)
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range []bool{false, true} {
				hint := storeHint(pg, tc, keep)
				if strings.Contains(hint, "-keep to replay") && !strings.Contains(hint, "over a broker") || !strings.Contains(hint, "can be read, not replayed") {
					t.Errorf("keep %v: the hint does not say its letters cannot be replayed:\n%s", keep, hint)
				}
				if strings.Contains(hintFile(hint), "transport:") {
					t.Errorf("keep %v: the hint gives an in-process transport section:\n%s", keep, hint)
				}
			}
		})
	}
	if storeHint(dlqops.StoreConfig{}, adapters.TransportConfig{}, true) != "" {
		t.Error("a memory store, gone with the process, has a hint")
	}
}
