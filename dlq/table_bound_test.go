package dlq_test

import (
	"errors"
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
