package dlq_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestPoisonKeepsItsCountThroughAnOverloadOfDeferrals: found by the chaos
// suite (docs/RELIABILITY.md). On a transport without a delivery count, a
// poison message is Nacked between attempts (its retry is deferred past
// max hold); meanwhile an overload defers more other messages than the
// attempt table holds. Their deferral records used to evict the poison
// message's count, which then restarted: up to twice max attempts. It
// must get exactly max attempts.
func TestPoisonKeepsItsCountThroughAnOverloadOfDeferrals(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const maxAttempts, table = 3, 8
		pub := newRecPublisher()
		b := dlq.DefaultBackoff()
		b.MaxAttempts, b.Initial, b.Max = maxAttempts, time.Second, time.Second
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithMaxHold(100*time.Millisecond),
			dlq.WithAttemptTableSize(table))
		if err != nil {
			t.Fatal(err)
		}
		poison := 0
		h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			if msg.UUID == "poison" {
				poison++
				return nil, errors.New("boom")
			}
			return nil, levee.Defer(time.Hour, errors.New("shed")) // an overload: deferred, not an attempt
		})
		for delivery := 1; delivery <= 4*maxAttempts; delivery++ {
			if _, err := h(message.NewMessage("poison", nil)); err == nil {
				break // dead-lettered
			}
			time.Sleep(2 * time.Second) // the redelivery comes after the deferred retry is due
			for i := range 4 * table {
				if _, err := h(message.NewMessage(fmt.Sprint("other-", delivery, "-", i), nil)); err == nil {
					t.Fatal("a deferral was acked")
				}
			}
		}
		if poison != maxAttempts {
			t.Errorf("poison handler calls: got %d, want %d (max attempts)", poison, maxAttempts)
		}
		dead := pub.published(testDLQ)
		if len(dead) != 1 || dead[0].Metadata[dlq.KeyAttempts] != fmt.Sprint(maxAttempts) {
			t.Fatalf("dead letters: got %d (attempts %v), want 1 with %d", len(dead), dead, maxAttempts)
		}
	})
}
