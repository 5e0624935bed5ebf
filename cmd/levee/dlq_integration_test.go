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
	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestDLQCLIOverPostgresAndRabbitMQ runs `levee dlq` end to end: letters
// recorded by a Monitor in PostgreSQL, listed and grouped by the CLI,
// replayed to RabbitMQ (and received there), not replayed twice; then a
// broker that is down makes replay exit 1 with a clear message.
func TestDLQCLIOverPostgresAndRabbitMQ(t *testing.T) {
	pgURL, amqpURL := brokertest.PostgresURL(), brokertest.AMQPURL()
	brokertest.SkipIfDown(t, pgURL)
	brokertest.SkipIfDown(t, amqpURL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := brokertest.Suffix()
	schema, topic := "levee_cli_"+suffix, "levee_cli_orders_"+suffix

	store, err := pgstore.Open(ctx, pgURL, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = store.Pool().Exec(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
		_ = store.Close()
	})
	tr, err := adapters.Build(ctx, adapters.TransportConfig{Kind: adapters.KindAMQP, AMQP: &adapters.AMQPConfig{URL: amqpURL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	t.Cleanup(func() {
		if conn, err := amqp091.Dial(amqpURL); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(topic, false, false, false)
			}
			_ = conn.Close()
		}
	})
	received, err := tr.Subscriber.Subscribe(ctx, topic) // declares the queue
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
		if err := mon.Record(ctx, "orders.dlq", m); err != nil {
			t.Fatal(err)
		}
	}
	handMsg := message.NewMessage("cli-"+suffix+"-hand", []byte("?"))
	if err := mon.Record(ctx, "orders.dlq", handMsg); err != nil {
		t.Fatal(err)
	}
	hand := dlqops.NewRecord(handMsg, "orders.dlq", time.Now()).ID

	dir := t.TempDir()
	cfgPath := dir + "/levee.yaml"
	writeCfg := func(amqp string) {
		// the letters came from the shared DLQ topic orders.dlq: their topic
		// must be listed for a replay
		body := fmt.Sprintf("transport: {kind: amqp, dial_timeout: 2s, amqp: {url: %q}}\nstore: {kind: postgres, url: %q, schema: %s, replay_topics: [%s]}\n", amqp, pgURL, schema, topic)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(amqpURL)
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runDLQ(append([]string{"--config", cfgPath}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := cli("groups")
	if code != 0 || !strings.Contains(out, fp) || !strings.Contains(out, "unknown") || !strings.Contains(out, "payment gateway timeout") {
		t.Fatalf("groups: exit %d\n%s\n%s", code, out, errs)
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

	writeCfg("amqp://guest:guest@127.0.0.1:1/")
	code, _, errs = cli("replay", "--id", hand)
	if code != 1 || !strings.Contains(errs, "broker unreachable") {
		t.Errorf("broker down: exit %d, stderr %q", code, errs)
	}
}
