package config_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// TestDedupMemoryStoreSurvivesABreakerOutage: the whole stack from a
// file, the memory store of 40 identities holding 10 done ones. A
// failure opens the breaker; 50 other messages are deferred while it is
// open (the dedup slot claims each and releases it at the deferral), so
// the store holds 10 identities all along. They must still be done: their
// duplicates are acked without running. The released claims counted
// against max_keys and flushed them: the duplicates were claimed again
// and deferred by the open breaker, to run once it closed.
func TestDedupMemoryStoreSurvivesABreakerOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := "handlers:\n  h:\n    dlq: {topic: d, max_hold: 2s, retry: {max_attempts: 100, initial: 10ms, max: 10ms}}\n" +
			"    dedup: {max_keys: 40}\n" +
			"    breaker: {consecutive_failures: 1, open_for: 1h, max_hold: 50ms}\n"
		a, _ := buildMetered(t, y)
		runs := map[string]int{}
		h := a.Stack("h").Middleware(func(m *message.Message) ([]*message.Message, error) {
			runs[m.UUID]++
			if m.UUID == "boom" {
				return nil, errors.New("downstream down")
			}
			return nil, nil
		})
		deliver := func(uuid string) error {
			_, err := h(message.NewMessage(uuid, nil))
			return err
		}
		for i := range 10 {
			if err := deliver(fmt.Sprint("done-", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := deliver("boom"); !levee.IsDeferral(err) {
			t.Fatalf("the failure that opens the breaker: got %v, want a deferral (its retries wait)", err)
		}
		for i := range 50 {
			if err := deliver(fmt.Sprint("held-", i)); !levee.IsDeferral(err) {
				t.Fatalf("held-%d: got %v, want a deferral", i, err)
			}
		}
		for i := range 10 {
			if err := deliver(fmt.Sprint("done-", i)); err != nil {
				t.Errorf("duplicate of done-%d: got %v, want acked as a duplicate", i, err)
			}
		}
		d, _ := a.Dedup("h")
		if got := d.Stats().Duplicates; got != 10 {
			t.Errorf("duplicates: got %d, want 10", got)
		}
	})
}
