//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestDLQCLIOverRedis runs `levee dlq` end to end on Redis alone: letters
// recorded by a Monitor in a Redis store (`store: {kind: redis}`), grouped,
// listed and shown by the CLI, replayed to a Redis stream (and received
// there), not replayed twice, archived and pruned; then a store that is
// down makes the CLI exit 1 naming the address.
func TestDLQCLIOverRedis(t *testing.T) {
	redisURL, redisAddr := brokertest.RedisURL(), brokertest.RedisAddr()
	brokertest.SkipIfDown(t, redisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := brokertest.Suffix()
	prefix, topic := "levee_cli_"+suffix, "levee_cli_orders_"+suffix

	store, err := redisstore.Open(ctx, redisURL, redisstore.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := store.Client()
		var keys []string
		iter := c.Scan(context.Background(), 0, prefix+":*", 1000).Iterator()
		for iter.Next(context.Background()) {
			keys = append(keys, iter.Val())
		}
		keys = append(keys, topic)
		_ = c.Del(context.Background(), keys...).Err()
		_ = store.Close()
	})
	tr, err := adapters.Build(ctx, adapters.TransportConfig{Kind: adapters.KindRedis, Redis: &adapters.RedisConfig{Addr: redisAddr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	received, err := tr.Subscriber.Subscribe(ctx, topic) // creates the consumer group
	if err != nil {
		t.Fatal(err)
	}

	mon, err := dlqops.NewMonitor(store)
	if err != nil {
		t.Fatal(err)
	}
	fp := dlq.Fingerprint("*errors.errorString", "payment gateway timeout")
	for i := range 3 {
		m := message.NewMessage(fmt.Sprintf("cli-%s-%d", suffix, i), []byte(fmt.Sprintf(`{"order":%d}`, i)))
		m.Metadata[dlq.KeyOriginalTopic] = topic
		m.Metadata[dlq.KeyHandler] = "payments"
		m.Metadata[dlq.KeyFingerprint] = fp
		m.Metadata[dlq.KeyError] = "payment gateway timeout"
		// the default DLQ topic of topic: a replay may go back to topic
		if err := mon.Record(ctx, topic+".dlq", m); err != nil {
			t.Fatal(err)
		}
	}
	handMsg := message.NewMessage("cli-"+suffix+"-hand", []byte("?"))
	if err := mon.Record(ctx, "orders.dlq", handMsg); err != nil {
		t.Fatal(err)
	}
	hand := dlqops.NewRecord(handMsg, "orders.dlq", time.Now()).ID

	cfgPath := t.TempDir() + "/levee.yaml"
	writeCfg := func(storeURL string) {
		body := fmt.Sprintf("transport: {kind: redis, dial_timeout: 2s, redis: {addr: %q}}\nstore: {kind: redis, url: %q, prefix: %s}\n",
			redisAddr, storeURL, prefix)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(redisURL)
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runDLQ(append([]string{"--config", cfgPath}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := cli("groups")
	if code != 0 || !strings.Contains(out, fp) || !strings.Contains(out, "unknown") || !strings.Contains(out, "payment gateway timeout") {
		t.Fatalf("groups: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = cli("--json", "show", hand); code != 0 || !strings.Contains(out, `"fingerprint": "unknown"`) {
		t.Fatalf("show: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = cli("replay", "--group", fp, "--rate", "100/s")
	if code != 0 || !strings.Contains(out, "replayed 3, held 0, failed 0") || !strings.Contains(errs, "done") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errs)
	}
	for i := range 3 {
		select {
		case m := <-received:
			if m.Metadata[dlq.KeyReplayCount] != "1" || !strings.HasPrefix(m.Metadata[dlq.KeyOriginalUUID], "cli-"+suffix) {
				t.Errorf("received %v", m.Metadata)
			}
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("received %d of 3 replays", i)
		}
	}
	if code, out, _ = cli("replay", "--group", fp); code != 0 || !strings.Contains(out, "replayed 0") {
		t.Errorf("second replay: exit %d\n%s", code, out)
	}
	if code, out, _ = cli("--json", "list", "--status", "replayed"); code != 0 || strings.Count(out, `"status": "replayed"`) != 3 {
		t.Errorf("list replayed: exit %d\n%s", code, out)
	}
	if code, out, _ = cli("archive", "--id", hand); code != 0 || !strings.Contains(out, "archived 1 dead letters") {
		t.Errorf("archive: exit %d\n%s", code, out)
	}
	if code, out, _ = cli("--json", "groups"); code != 0 || !strings.Contains(out, `"archived": 1`) || !strings.Contains(out, `"replayed": 3`) {
		t.Errorf("groups after archive: exit %d\n%s", code, out)
	}
	if code, out, _ = cli("prune", "--max-count", "1"); code != 0 || !strings.Contains(out, "deleted 3 dead letters") {
		t.Errorf("prune: exit %d\n%s", code, out)
	}
	if left, err := store.List(ctx, dlqops.Filter{}); err != nil || len(left) != 1 || left[0].ID != hand {
		t.Errorf("left after prune: %v %v", left, err)
	}

	writeCfg("redis://127.0.0.1:1/0")
	code, _, errs = cli("groups")
	if code != 1 || !strings.Contains(errs, "store unreachable") || !strings.Contains(errs, "127.0.0.1:1") {
		t.Errorf("store down: exit %d, stderr %q", code, errs)
	}
}
