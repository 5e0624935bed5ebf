package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetKeyChurnKeepsBusyKeys: per-key fleet limits keep max_keys
// keys, and a producer can send a new key with every message. A key whose
// message waits for its next token must not be dropped for them: the
// waiting message is admitted when its token is due. (Before the fix the
// least recently used key was dropped busy or not, so the waiting message
// failed with ErrClosed, as if the limiter had been closed, and came back
// at once, RetryAfter 0, to a new bucket that hostile keys dropped again.)
func TestFleetKeyChurnKeepsBusyKeys(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: 1e6,
			PerKeyRate: 1, PerKeyBurst: 1, PerKeyMetadata: "tenant", MaxKeys: 2}), ratelimit.WithMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		send := func(tenant string) error {
			m := message.NewMessage("u-"+tenant, nil)
			m.Metadata.Set("tenant", tenant)
			m.SetContext(context.Background())
			_, err := h(m)
			return err
		}
		if err := send("a"); err != nil {
			t.Fatalf("first message of a: %v", err)
		}
		waited := make(chan error, 1)
		go func() { waited <- send("a") }() // waits about 1s for a's next token
		synctest.Wait()
		for i := range 20 {
			if err := send(fmt.Sprint("hostile-", i)); err != nil {
				t.Logf("hostile key %d: %v", i, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := <-waited; err != nil {
			t.Errorf("the waiting message of a: got %v, want it admitted when its token is due", err)
		}
	})
}
