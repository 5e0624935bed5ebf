package dlq_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

// A message's table record is removed when the message settles in this
// process. A Nack that brings no redelivery here leaves nothing to settle:
// the broker already took the message's ack from a duplicate delivered
// while the first copy was held (NATS redelivering past AckWait under
// load: TestBackpressure/nats/shed kept an entry in CI), another consumer
// took the redelivery, or the broker dropped it (max deliveries). Such a
// record expires attempt_table_ttl after the Nack, or after its deferred
// retry's due time when that is later.

// expiryHandler returns a handler behind r whose inner call defers every
// message whose "defer" metadata is set (RetryAfter 1s), fails those whose
// "fail" metadata is set, and succeeds otherwise.
func expiryHandler(r *dlq.Retrier) message.HandlerFunc {
	return r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		switch {
		case msg.Metadata.Get("defer") == "1":
			return nil, levee.Defer(time.Second, errors.New("shed"))
		case msg.Metadata.Get("fail") == "1":
			return nil, errors.New("downstream timeout")
		}
		return nil, nil
	})
}

func expiryMsg(uuid, key string) *message.Message {
	m := message.NewMessage(uuid, []byte("{}"))
	if key != "" {
		m.Metadata.Set(key, "1")
	}
	m.SetContext(context.Background())
	return m
}

// TestTableRecordOfDuplicateExpires: one copy succeeds (its record, if any,
// is forgotten), then a duplicate of it is deferred; its Nack reaches a
// message the broker has acked, so no copy comes back. The record expires.
func TestTableRecordOfDuplicateExpires(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const ttl = time.Minute
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithAttemptTableTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		h := expiryHandler(r)
		if _, err := h(expiryMsg("dup", "")); err != nil {
			t.Fatalf("first copy: %v", err)
		}
		if _, err := h(expiryMsg("dup", "defer")); !levee.IsDeferral(err) {
			t.Fatalf("duplicate: got %v, want a deferral", err)
		}
		if r.Pending() != 1 {
			t.Fatalf("pending after the duplicate's deferral: got %d, want 1", r.Pending())
		}
		// Due 1 s after the deferral; the record outlives that by ttl.
		time.Sleep(time.Second + ttl - time.Millisecond)
		if r.Pending() != 1 {
			t.Fatalf("pending before the record's expiry: got %d, want 1", r.Pending())
		}
		time.Sleep(2 * time.Millisecond)
		if r.Pending() != 0 {
			t.Fatalf("pending after the record's expiry: got %d, want 0", r.Pending())
		}
	})
}

// TestTableExpiredRecordSweptByTraffic: an expired record leaves the table
// as other messages pass, without anyone calling Pending, so the success
// path gets its empty-table fast path back.
func TestTableExpiredRecordSweptByTraffic(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithAttemptTableTTL(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		h := expiryHandler(r)
		if _, err := h(expiryMsg("gone", "defer")); !levee.IsDeferral(err) {
			t.Fatalf("got %v, want a deferral", err)
		}
		time.Sleep(2 * time.Minute)
		if _, err := h(expiryMsg("other", "")); err != nil {
			t.Fatal(err)
		}
		if n := r.PendingUnswept(); n != 0 {
			t.Fatalf("table entries after a message passed an expired record: got %d, want 0", n)
		}
	})
}

// TestTableReusedUUIDAfterExpiry: a producer that reuses UUIDs (an order
// id as the message id) sends a new message with the UUID of one whose
// stale record is in the table. Its deferrals and failures count from
// zero: a stale deferredSince would dead-letter it at its first deferral
// under max_deferred, a stale attempt count would spend its retries.
func TestTableReusedUUIDAfterExpiry(t *testing.T) {
	t.Run("max_deferred", func(t *testing.T) {
		testkit.Synctest(t, func(t *testing.T) {
			pub := newRecPublisher()
			r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxDeferred(15*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			h := expiryHandler(r)
			if _, err := h(expiryMsg("order-7", "defer")); !levee.IsDeferral(err) {
				t.Fatalf("got %v, want a deferral", err)
			}
			// The redelivery went to another replica. An hour later the
			// producer sends order 7 again, into an overload.
			time.Sleep(time.Hour)
			if _, err := h(expiryMsg("order-7", "defer")); !levee.IsDeferral(err) || errors.Is(err, dlq.ErrDeferredTooLong) {
				t.Fatalf("new message with a reused UUID: got %v, want a plain deferral", err)
			}
			if pub.total() != 0 {
				t.Fatalf("dead letters: got %d, want 0", pub.total())
			}
		})
	})
	t.Run("attempts", func(t *testing.T) {
		testkit.Synctest(t, func(t *testing.T) {
			r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithMaxHold(time.Millisecond),
				dlq.WithBackoff(dlq.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 2, MaxAttempts: 5}),
				dlq.WithJitter(func() float64 { return 1 }))
			if err != nil {
				t.Fatal(err)
			}
			h := expiryHandler(r)
			var later *dlq.RetryLaterError
			if _, err := h(expiryMsg("order-8", "fail")); !errors.As(err, &later) || later.Attempts != 1 {
				t.Fatalf("got %v, want a deferred retry after attempt 1", err)
			}
			time.Sleep(time.Hour)
			if _, err := h(expiryMsg("order-8", "fail")); !errors.As(err, &later) || later.Attempts != 1 {
				t.Fatalf("new message with a reused UUID: got %v, want a deferred retry after attempt 1", err)
			}
		})
	})
}

// TestTableRecordKeptUntilTTL: a redelivery that comes back within the
// ttl after its due time keeps its count (here, a deferral that must not
// be counted against the transport's delivery count).
func TestTableRecordKeptUntilTTL(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const ttl = time.Minute
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithAttemptTableTTL(ttl),
			dlq.WithMaxHold(time.Millisecond),
			dlq.WithBackoff(dlq.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 2, MaxAttempts: 2}),
			dlq.WithJitter(func() float64 { return 1 }))
		if err != nil {
			t.Fatal(err)
		}
		h := expiryHandler(r)
		first := expiryMsg("late", "defer")
		first.Metadata.Set(dlq.KeyDeliveryCount, "1")
		if _, err := h(first); !levee.IsDeferral(err) {
			t.Fatalf("got %v, want a deferral", err)
		}
		time.Sleep(time.Second + ttl - time.Second) // due after 1 s, back ttl-1s later
		second := expiryMsg("late", "fail")
		second.Metadata.Set(dlq.KeyDeliveryCount, "2")
		var later *dlq.RetryLaterError
		if _, err := h(second); !errors.As(err, &later) || later.Attempts != 1 {
			t.Fatalf("redelivery within the ttl: got %v, want a deferred retry after attempt 1 (the deferral not counted)", err)
		}
	})
}

func TestTableTTLRejectsNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithAttemptTableTTL(d)); err == nil {
			t.Errorf("ttl %v accepted", d)
		}
	}
}

// TestTableTTLDocumented: docs/DLQ.md and the package doc state the
// default TTL.
func TestTableTTLDocumented(t *testing.T) {
	ttl := strings.TrimSuffix(dlq.DefaultTableTTL.String(), "0s") // "10m"
	for path, want := range map[string]string{
		"../docs/DLQ.md": "`attempt_table_ttl` (default " + ttl + ")",
		"doc.go":         "default\n// " + ttl + " after its Nack",
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("%s does not state %q", path, want)
		}
	}
}
