package config_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// TestPriorityInvalidCountsEachPass: levee.priority.invalid counts each
// pass of a message through the scheduler, not each message: one delivery
// whose levee_priority is "high" and whose three attempts fail (two
// in-process retries, then a dead letter) is counted three times, as
// docs/TELEMETRY.md says.
func TestPriorityInvalidCountsEachPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := "schedulers:\n  s: {slots: 1}\nhandlers:\n  h:\n    metrics: true\n    dlq: {topic: d, retry: {max_attempts: 3, initial: 10ms, max: 10ms}}\n    priority: {scheduler: s}\n"
		a, reader := buildMetered(t, y)
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("down") })
		m := message.NewMessage("m", nil)
		m.Metadata.Set(levee.KeyPriority, "high")
		if _, err := h(m); err != nil {
			t.Fatal(err)
		}
		got, _ := points(t, reader, "outcome", "class")
		for k, w := range map[string]int64{
			"levee.priority.invalid":                         3,
			"levee.dlq.retries":                              2,
			"levee.handler.messages dead_lettered exhausted": 1,
		} {
			if got[k] != w {
				t.Errorf("%s: got %d, want %d", k, got[k], w)
			}
		}
	})
}
