//go:build integration

package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestFleetRejectModeAfterQuietPeriod: a levee.yaml handler on NATS with
// a fleet limit far above its traffic and `mode: reject`. After one
// message and a quiet second (the replica gives its leased tokens back),
// 50 more must all be handled. Before the fix a refused message did not
// make the replica lease again: each was refused, waited in the dlq and
// refused again until its hold ran out, then Nacked, for good.
func TestFleetRejectModeAfterQuietPeriod(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	brokertest.SkipIfDown(t, brokertest.NATSURL())
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	prefix := brokertest.Fresh(t, "levee_svc_fleetreject", func(p string) error {
		keys, err := rc.Keys(context.Background(), p+":*").Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return rc.Del(context.Background(), keys...).Err()
	})
	topic := brokertest.Name("fleetreject")
	y := fmt.Sprintf(`transport: {kind: nats, concurrency: 8, ack_deadline: 30s, consumer_group: %s, nats: {url: %q}}
fleet: {store: %q, prefix: %q}
handlers:
  h:
    dlq: {topic: %s.dlq}
    ratelimit: {mode: reject}
    fleet: {ratelimit: {rate: 10000/s}}
`, brokertest.Name("fleetreject"), brokertest.NATSURL(), brokertest.RedisURL(), prefix, topic)
	svc, closeSvc := newTopicService(t, y, config.Deps{}, topic)
	defer closeSvc()
	var mu sync.Mutex
	handled := map[string]bool{}
	svc.Handle("h", topic, func(m *message.Message) error {
		mu.Lock()
		handled[m.UUID] = true
		mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	<-svc.Running()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(handled) }
	waitFor := func(n int, within time.Duration) bool {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if count() >= n {
				return true
			}
		}
		return false
	}
	if err := svc.Transport.Publisher.Publish(topic, message.NewMessage("first", nil)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(1, 10*time.Second) {
		t.Fatal("the first message was not handled within 10 s")
	}
	time.Sleep(1500 * time.Millisecond) // quiet: the replica gives its tokens back
	var msgs []*message.Message
	for i := range 50 {
		msgs = append(msgs, message.NewMessage(fmt.Sprint("after-", i), nil))
	}
	if err := svc.Transport.Publisher.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	if !waitFor(51, 10*time.Second) {
		t.Errorf("after a quiet second, %d of 50 messages handled within 10 s under a fleet rate of 10000/s, want all", count()-1)
	}
}
