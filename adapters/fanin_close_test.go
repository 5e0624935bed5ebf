package adapters_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters"
)

// TestFanInCloseWaitsForCloseInProgress: a Watermill router closes its
// handlers' subscriber (one FanIn shared by every handler of a service)
// itself, each handler in a goroutine of its own, and Router.Close returns
// once the handlers' channels closed, not once that Close returned; the
// service then closes the transport, which closes the FanIn again. That
// second Close returned at once while the first still closed the
// subscribers, so service.Close returned with a Kafka consumer still
// committing its offsets and leaving its group (170 goroutines and 8
// connections still open, and gone if the process exited then). A Close
// now returns once the subscribers are closed, whichever call closes them.
func TestFanInCloseWaitsForCloseInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 5 * time.Second
		sub := &graceSub{fakeSub: fakeSub{src: make(chan *message.Message)}, grace: grace}
		f, err := adapters.NewFanIn(sub)
		if err != nil {
			t.Fatal(err)
		}
		first := make(chan error, 1)
		go func() { first <- f.Close() }() // the router's
		synctest.Wait()                    // the first Close waits in the subscriber's Close
		start := time.Now()
		if err := f.Close(); err != nil { // the transport's
			t.Fatal(err)
		}
		if took := time.Since(start); took != grace {
			t.Errorf("second Close returned after %v, want %v (once the first closed the subscriber)", took, grace)
		}
		sub.mu.Lock()
		closed := sub.closed
		sub.mu.Unlock()
		if closed != 1 {
			t.Errorf("subscriber closed %d times when the second Close returned, want 1", closed)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
}
