//go:build integration

package fleetredis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetSectionRejectModeOnRedis: a handler whose ratelimit section
// says `mode: reject` refuses a message the fleet limit (on Redis) cannot
// admit now, with a deferral, instead of waiting for the fleet's token
// (config built the fleet limit in wait mode before).
func TestFleetSectionRejectModeOnRedis(t *testing.T) {
	url, prefix := sharedRedis(t)
	store, err := fleetredis.Open(context.Background(), url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	y := "handlers:\n  h:\n    ratelimit: {rate: 1000/s, burst: 10, mode: reject}\n    fleet: {key: audit-adaptive-mode, ratelimit: {rate: 1/min, burst: 1}}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{FleetStore: store})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	// A replica holds no fleet token until its first lease comes back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h(message.NewMessage("1", nil))
		if err == nil {
			break
		}
		if !errors.Is(err, ratelimit.ErrLimited) || time.Now().After(deadline) {
			t.Fatalf("first message: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h(message.NewMessage("2", nil))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ratelimit.ErrLimited) || !levee.IsDeferral(err) {
			t.Errorf("second message within the minute: %v, want a deferral wrapping ratelimit.ErrLimited", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second message still waiting for the fleet's token after 10s: the fleet limit ignored mode: reject")
	}
}
