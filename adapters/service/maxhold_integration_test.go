//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
)

// A hold above the max hold New gives the stacks (HoldFraction of the ack
// deadline) fails New, as `levee config check` does, rather than passing
// New (checked against the whole deadline) and failing Run.
func TestNewRefusesHoldsAboveTheMaxHold(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.NATSURL())
	y := fmt.Sprintf("transport: {kind: nats, ack_deadline: 10s, nats: {url: %q}}\nhandlers:\n  h:\n    dlq: {max_hold: 9s}\n", brokertest.NATSURL())
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{})
	if err == nil {
		_ = svc.Close()
		t.Fatal("New accepted a max_hold of 9s with a max hold of 8s")
	}
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "max hold (8s") {
		t.Fatalf("got %v, want the max hold named", err)
	}
}
