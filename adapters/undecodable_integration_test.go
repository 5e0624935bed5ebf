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
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestRedisUndecodableEntry: a stream entry watermill-redisstream cannot
// decode (no UUID field, metadata that is not msgpack) used to stop the
// group member that read it and every member that claimed it after: the
// topic stalled, nothing dead-lettered. Now each is dead-lettered (class
// validation, the reason in its error, the handler not called) and the
// messages after them are processed. A producer's _watermill_message_uuid
// in the metadata no longer makes its dead letter unpublishable.
func TestRedisUndecodableEntry(t *testing.T) {
	brokertest.SkipIfDown(t, redisAddr)
	topic := brokertest.Name("undecodable")
	y := fmt.Sprintf("transport: {kind: redis, concurrency: 2, ack_deadline: 2s, redis: {addr: %q}}\nhandlers:\n  h:\n    dlq: {}\n", redisAddr)
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
		processed []string
	)
	svc.Handle("h", topic, func(msg *message.Message) error {
		if msg.Metadata.Get("fail") == "1" {
			return dlq.Permanent(fmt.Errorf("refused"))
		}
		mu.Lock()
		processed = append(processed, msg.UUID)
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

	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer c.Close()
	// A producer's watermill-reserved key: watermill-redisstream refused
	// to publish the dead letter carrying it, so the failing message was
	// Nacked for ever.
	reserved, err := msgpack.Marshal(message.Metadata{"_watermill_message_uuid": "x", "fail": "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []map[string]any{
		{"payload": "no uuid"},
		{"_watermill_message_uuid": "reserved", "payload": "reserved", "metadata": string(reserved)},
		{"_watermill_message_uuid": "bad-md", "payload": "x", "metadata": "\xc1 not msgpack"},
	} {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	healthy := watermill.NewUUID()
	if err := svc.Transport.Publisher.Publish(topic, message.NewMessage(healthy, []byte("ok"))); err != nil {
		t.Fatal(err)
	}
	got := map[string]message.Metadata{}
	deadline := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case l := <-letters:
			l.Ack()
			got[string(l.Payload)] = l.Metadata
		case <-deadline:
			t.Fatalf("dead letters after 30s: %v", got)
		}
	}
	for payload, reason := range map[string]string{"no uuid": "_watermill_message_uuid key is missing", "x": "unmarshal metadata fail"} {
		md := got[payload]
		if md[dlq.KeyErrorClass] != string(levee.ClassValidation) || md[dlq.KeyAttempts] != "1" ||
			!strings.Contains(md[dlq.KeyError], "could not decode") || !strings.Contains(md[dlq.KeyError], reason) {
			t.Errorf("letter %q: class %s, attempts %s, error %q; want validation, 1 (as a schema failure counts), the reason", payload, md[dlq.KeyErrorClass], md[dlq.KeyAttempts], md[dlq.KeyError])
		}
		if _, ok := md[levee.KeyUndecodable]; ok {
			t.Errorf("letter %q carries the control key %s", payload, levee.KeyUndecodable)
		}
	}
	if md := got["reserved"]; md[dlq.KeyErrorClass] != string(levee.ClassPermanent) || md["_watermill_message_uuid"] != "" {
		t.Errorf("letter of the message with a reserved key: %v, want class permanent and no _watermill_message_uuid", md)
	}
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := len(processed) == 1 && processed[0] == healthy
		n := len(processed)
		mu.Unlock()
		if done {
			return
		}
		if n > 1 {
			t.Fatalf("the handler ran %d times, want once (the healthy message only)", n)
		}
	}
	t.Fatal("the healthy message after the undecodable entries was not processed in 30s")
}
