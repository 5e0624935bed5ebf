package dlq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

// A consumer restarted after a SIGKILL gets a message whose transport
// delivery count (JetStream's NumDelivered) also counts deliveries that
// made no attempt in the dead process: deferrals, messages it had fetched
// and never handled, deliveries the kill interrupted. With an attempt
// store, the store's count is the count: the message gets the attempts it
// has left, not one (found by the chaos suite's consumer_kill plan: a
// poison message dead-lettered after 3 handler calls with levee_attempts
// 5, a transient one that needed its 5th call dead-lettered after 4).
func TestAttemptStoreCountsOverTheDeliveryCount(t *testing.T) {
	tests := []struct {
		name       string
		storeFails bool
		wantCalls  int
	}{
		{"the store's 2 failures leave 3 attempts", false, 3},
		{"a failing store falls back to the delivery count", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				store := &memAttempts{}
				now := time.Now()
				for range 2 { // two failed attempts in the process that was killed
					if _, _, err := store.Fail(context.Background(), "", "m", now, time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				if tt.storeFails {
					store.fail = errors.New("redis down")
				}
				pub := newRecPublisher()
				r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(5), dlq.WithAttemptStore(store),
					dlq.WithBackoff(dlq.Backoff{MaxAttempts: 5, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2}))
				if err != nil {
					t.Fatal(err)
				}
				msg := message.NewMessage("m", nil)
				msg.Metadata.Set(levee.KeyDeliveryCount, "5") // 4 earlier deliveries, 2 of them attempts
				calls := 0
				if _, err := r.Middleware(failingHandler(&calls, -1, errBoom))(msg); err != nil {
					t.Fatalf("got %v, want dead-lettered", err)
				}
				dls := pub.published(testDLQ)
				if calls != tt.wantCalls || len(dls) != 1 || dls[0].Metadata.Get(dlq.KeyAttempts) != "5" {
					t.Errorf("got %d handler calls, %d dead letters; want %d calls and one letter with attempts 5", calls, len(dls), tt.wantCalls)
				}
			})
		})
	}
}

// A consumer killed between a poison message's last failed attempt and
// its dead letter's publish: the redelivery (delivery count 2, no record
// in the new process's table) finds max attempts spent in the store and is
// dead-lettered without another handler call (found by the chaos suite:
// calls 6 and levee_attempts 6 for max 5). With attempts left, or on a
// first delivery, the store is not asked or the handler runs.
func TestAttemptReaderSpentDeadLettersWithoutACall(t *testing.T) {
	tests := []struct {
		name          string
		recorded      int
		deliveryCount string
		readFails     bool
		wantCalls     int
		wantAttempts  string
		wantReads     int
	}{
		{"spent: dead-lettered, no call", 5, "2", false, 0, "5", 1},
		{"2 left: the handler runs twice", 3, "2", false, 2, "5", 1},
		{"a first delivery is not read", 5, "", false, 1, "6", 0},
		{"a failed read runs the delivery", 5, "2", true, 1, "6", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				store := &memAttempts{}
				for range tt.recorded {
					if _, _, err := store.Fail(context.Background(), "", "m", time.Now(), time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				pub := newRecPublisher()
				r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithAttemptStore(store),
					dlq.WithBackoff(dlq.Backoff{MaxAttempts: 5, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2}))
				if err != nil {
					t.Fatal(err)
				}
				if tt.readFails {
					store.readFail = errors.New("redis down")
				}
				msg := message.NewMessage("m", nil)
				if tt.deliveryCount != "" {
					msg.Metadata.Set(levee.KeyDeliveryCount, tt.deliveryCount)
				}
				calls := 0
				if _, err := r.Middleware(failingHandler(&calls, -1, errBoom))(msg); err != nil {
					t.Fatalf("got %v, want dead-lettered", err)
				}
				dls := pub.published(testDLQ)
				if calls != tt.wantCalls || store.reads != tt.wantReads || len(dls) != 1 || dls[0].Metadata.Get(dlq.KeyAttempts) != tt.wantAttempts ||
					dls[0].Metadata.Get(dlq.KeyErrorClass) != string(dlq.ClassExhausted) {
					t.Errorf("got %d calls, %d reads, %d letters (attempts %q); want %d calls, %d reads, one letter, exhausted, attempts %s",
						calls, store.reads, len(dls), dls[0].Metadata.Get(dlq.KeyAttempts), tt.wantCalls, tt.wantReads, tt.wantAttempts)
				}
			})
		})
	}
}
