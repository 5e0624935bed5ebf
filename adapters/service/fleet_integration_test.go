//go:build integration

package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestFleetSectionFromTheFile: a levee.yaml with a fleet section runs
// under service.Run, its handlers' fleet limits on the Redis the section
// names, as config check's warning says ("adapters/service builds it from
// there"). Before, New did not open the fleet store, so Run failed with
// "a fleet section needs Deps.FleetStore" on every file with one.
func TestFleetSectionFromTheFile(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() }) // after Fresh's cleanup
	prefix := brokertest.Fresh(t, "levee_svc_fleet", func(p string) error {
		keys, err := rc.Keys(context.Background(), p+":*").Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return rc.Del(context.Background(), keys...).Err()
	})
	y := fmt.Sprintf("transport: {kind: gochannel}\nfleet: {store: %q, prefix: %q}\nhandlers:\n  h:\n    fleet: {ratelimit: {rate: 100/s}}\n",
		brokertest.RedisURL(), prefix)
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	got := make(chan string, 10)
	svc.Handle("h", "h", func(m *message.Message) error { got <- m.UUID; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-svc.Running():
	}
	if err := svc.Transport.Publisher.Publish("h", message.NewMessage("1", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != "1" {
			t.Fatalf("handled %q, want 1", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not handled in 10s")
	}
	if n, err := rc.Exists(context.Background(), prefix+":rl:h:tat").Result(); err != nil || n != 1 {
		t.Errorf("the fleet limit's bucket %s:rl:h:tat in Redis: got %d, %v; want it there", prefix, n, err)
	}
}
