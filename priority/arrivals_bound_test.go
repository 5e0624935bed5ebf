package priority_test

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/priority"
)

// TestShedHugeUUIDsAreNotKept: the scheduler remembers the first arrival
// of up to ArrivalMemory shed messages by UUID, and a producer chooses
// the UUID. 64 shed messages with 512 KiB UUIDs must not keep 32 MiB
// alive after they left: the memory is bounded by the entry count, not
// by what producers send. (Before the fix the table kept every UUID
// whole: 10,000 shed messages of 1 MB UUIDs kept 10 GB.)
func TestShedHugeUUIDsAreNotKept(t *testing.T) {
	s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := make(chan struct{})
	h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
		<-release
		return nil, nil
	})
	held := make(chan error, 2)
	for i := range 2 { // one holds the slot, one fills the queue
		go func() {
			_, err := h(message.NewMessage("holder-"+strconv.Itoa(i), nil))
			held <- err
		}()
	}
	for s.Stats().Waiting < 1 {
		runtime.Gosched()
	}
	const n, size = 64, 512 << 10
	before := heapAlloc()
	for i := range n {
		m := message.NewMessage(strings.Repeat("u", size)+strconv.Itoa(i), nil)
		_, err := h(m)
		if !errors.Is(err, priority.ErrQueueFull) {
			t.Fatalf("message %d: got %v, want ErrQueueFull", i, err)
		}
	}
	grown := int64(heapAlloc()) - int64(before)
	close(release)
	for range 2 {
		if err := <-held; err != nil {
			t.Error(err)
		}
	}
	if limit := int64(n * size / 8); grown > limit {
		t.Errorf("heap grew %d bytes after %d shed messages of %d-byte UUIDs, want under %d (the arrival table keeps whole UUIDs)", grown, n, size, limit)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
