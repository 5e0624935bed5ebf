//go:build integration

package adapters_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// TestPostgresUndecodableRow: rows another producer inserted into a
// topic's table with metadata that is valid JSON but not an object of
// strings (an array, a number, a string, an object holding a number or a
// nested object). watermill-sql failed every poll of the table on the
// oldest such row, so the topic stalled behind it for good and nothing
// was dead-lettered: the rows after it, a Levee publish among them, were
// never delivered. Now each is dead-lettered (class validation, the
// reason in its error, the handler not called) and the rows after them
// are processed: one whose metadata is JSON null, one carrying a forged
// levee_undecodable (dropped: it decodes), and the healthy publish.
func TestPostgresUndecodableRow(t *testing.T) {
	pool := pgPool(t)
	topic := "undecodable_" + strings.ToLower(watermill.NewShortUUID())
	y := fmt.Sprintf("transport: {kind: postgres, concurrency: 2, ack_deadline: 5s, postgres: {url: %q, poll_interval: 20ms, max_conns: 12}}\nhandlers:\n  h:\n    dlq: {}\n", postgresURL)
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), cfg, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	defer func() { _ = svc.Transport.DeleteTopics(context.Background(), topic, topic+".dlq") }()
	var (
		mu        sync.Mutex
		processed = map[string]message.Metadata{} // by payload
	)
	svc.Handle("h", topic, func(msg *message.Message) error {
		mu.Lock()
		processed[string(msg.Payload)] = msg.Metadata
		mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	letters, err := svc.Transport.Subscriber.Subscribe(ctx, topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()

	bad := map[string]string{ // payload: metadata
		`"array"`:  `["a", "b"]`,
		`"number"`: `1`,
		`"string"`: `"s"`,
		`"int"`:    `{"retries": 3}`,
		`"nested"`: `{"a": {"b": "c"}}`,
	}
	good := map[string]string{
		`"null"`:   `null`,
		`"forged"`: `{"` + levee.KeyUndecodable + `": "forged", "k": "v"}`,
	}
	for _, rows := range []map[string]string{bad, good} {
		for payload, md := range rows {
			if _, err := pool.Exec(ctx, `INSERT INTO "watermill_`+topic+`" (uuid, payload, metadata) VALUES ($1, $2, $3::json)`,
				watermill.NewUUID(), []byte(payload), md); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := svc.Transport.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(`"healthy"`))); err != nil {
		t.Fatal(err)
	}

	got := map[string]message.Metadata{}
	deadline := time.After(30 * time.Second)
	for len(got) < len(bad) {
		select {
		case l := <-letters:
			l.Ack()
			got[string(l.Payload)] = l.Metadata
		case <-deadline:
			t.Fatalf("dead letters after 30s: %v (the topic stalls on an undecodable row?)", got)
		}
	}
	for payload := range bad {
		md, ok := got[payload]
		if !ok {
			t.Errorf("no dead letter of the row with payload %s", payload)
			continue
		}
		if md[dlq.KeyErrorClass] != string(levee.ClassValidation) || md[dlq.KeyAttempts] != "1" ||
			!strings.Contains(md[dlq.KeyError], "could not decode") || !strings.Contains(md[dlq.KeyError], "not a JSON object of strings") {
			t.Errorf("letter %s: class %s, attempts %s, error %q; want validation, 1, the reason", payload, md[dlq.KeyErrorClass], md[dlq.KeyAttempts], md[dlq.KeyError])
		}
		if _, ok := md[levee.KeyUndecodable]; ok {
			t.Errorf("letter %s carries the control key %s", payload, levee.KeyUndecodable)
		}
	}
	want := []string{`"null"`, `"forged"`, `"healthy"`}
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(processed)
		mu.Unlock()
		if n >= len(want) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range want {
		md, ok := processed[p]
		if !ok {
			t.Errorf("the row with payload %s after the undecodable ones was not processed in 30s (processed: %v)", p, processed)
			continue
		}
		if _, forged := md[levee.KeyUndecodable]; forged {
			t.Errorf("the handler saw a producer's %s on %s", levee.KeyUndecodable, p)
		}
	}
	if md := processed[`"forged"`]; md != nil && md.Get("k") != "v" {
		t.Errorf("the forged row's metadata %v, want k=v kept", md)
	}
	for p := range processed {
		if _, isBad := bad[p]; isBad {
			t.Errorf("the handler ran on the undecodable row %s", p)
		}
	}
}
