package dlq_test

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
)

// TestHugeUUIDsAreNotKept: the attempt table keeps the last
// attempt_table_size failed and as many deferred messages by UUID, and a
// producer chooses the UUID. 32 failed and 32 deferred messages with
// 512 KiB UUIDs must not keep 32 MiB alive after they were Nacked: the
// table's memory is bounded by its entry count, not by what producers
// send (before the fix it kept every UUID whole: 2 x 10,000 entries of
// 1 MB UUIDs kept 20 GB). A huge UUID's count still survives its
// redeliveries: a poison message with one gets exactly max attempts.
func TestHugeUUIDsAreNotKept(t *testing.T) {
	const maxAttempts = 3
	pub := newRecPublisher()
	b := dlq.DefaultBackoff()
	b.MaxAttempts, b.Initial, b.Max = maxAttempts, time.Nanosecond, time.Nanosecond
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithMaxHold(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if strings.HasPrefix(msg.UUID, "defer") {
			return nil, levee.Defer(time.Hour, errors.New("shed"))
		}
		calls++
		return nil, errors.New("boom")
	})
	const n, size = 32, 512 << 10
	before := heapAlloc()
	for i := range n {
		for _, kind := range []string{"fail", "defer"} {
			m := message.NewMessage(kind+strings.Repeat("u", size)+strconv.Itoa(i), nil)
			if _, err := h(m); err == nil {
				t.Fatalf("%s message %d was acked", kind, i)
			}
		}
	}
	if grown := int64(heapAlloc()) - int64(before); grown > 2*n*size/8 {
		t.Errorf("heap grew %d bytes after %d Nacked messages of %d-byte UUIDs, want under %d (the attempt table keeps whole UUIDs)",
			grown, 2*n, size, 2*n*size/8)
	}

	calls = 0
	poison := "fail" + strings.Repeat("p", 1<<20)
	for range 4 * maxAttempts {
		if _, err := h(message.NewMessage(poison, nil)); err == nil {
			break // dead-lettered
		}
	}
	if calls != maxAttempts {
		t.Errorf("poison with a 1 MiB UUID: %d handler calls, want %d (max attempts)", calls, maxAttempts)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLongErrorsAreNotKept: the attempt table keeps a failing message's
// error until its retry, and handlers' errors often quote the message. 64
// failed messages whose errors quote a 512 KiB metadata value must not
// keep 32 MiB alive after they were Nacked (before the fix they did:
// 10,000 entries of a 1 MB value kept 10 GB); what is kept is the
// message cut to max_error_length, which an early redelivery still
// reports.
func TestLongErrorsAreNotKept(t *testing.T) {
	pub := newRecPublisher()
	b := dlq.DefaultBackoff()
	b.MaxAttempts, b.Initial, b.Max = 3, time.Hour, time.Hour
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithMaxHold(time.Millisecond),
		dlq.WithJitter(func() float64 { return 1 }))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
		return nil, fmt.Errorf("invalid order %s", m.Metadata.Get("order"))
	})
	const n, size = 64, 512 << 10
	before := heapAlloc()
	for i := range n {
		m := message.NewMessage("u"+strconv.Itoa(i), nil)
		m.Metadata.Set("order", strings.Repeat("o", size)+strconv.Itoa(i))
		if _, err := h(m); err == nil {
			t.Fatalf("message %d was acked", i)
		}
	}
	if grown := int64(heapAlloc()) - int64(before); grown > n*size/8 {
		t.Errorf("heap grew %d bytes after %d failed messages whose errors quote %d bytes, want under %d (the attempt table keeps whole errors)",
			grown, n, size, n*size/8)
	}
	if got := r.Pending(); got != n {
		t.Errorf("pending: got %d want %d", got, n)
	}
	_, err = h(message.NewMessage("u0", nil)) // an early redelivery: its retry is not due
	if err == nil || !strings.Contains(err.Error(), "invalid order ooo") || len(err.Error()) > 2*dlq.DefaultMaxErrorLength {
		t.Errorf("early redelivery: got %.80v (%d bytes), want the kept error, cut", err, len(fmt.Sprint(err)))
	}
}
