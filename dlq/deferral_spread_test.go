package dlq_test

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/ratelimit"
)

// TestRejectBacklogUnderMaxDeferred: a backlog of 300 against a 20/s
// limiter in reject mode, behind a dlq that holds a deferral in process
// up to 1 s and dead-letters a message still deferred 5 s after its
// first deferral, on a transport with delayed redelivery. Every rejected
// message was told the next token, so the backlog came back all together
// and was rejected again and again: the messages not admitted within 5 s
// (174 of the 300 healthy ones, after 29,799 rejections) were
// dead-lettered as deferred too long, though the limiter would have
// admitted them all within 15 s. The rejections are now spread over the tokens to come: each message is
// deferred about once, comes back at its token, and none is
// dead-lettered.
func TestRejectBacklogUnderMaxDeferred(t *testing.T) {
	for _, rd := range []redelivery{{name: "delay", native: true}, {name: "counted+delay", count: true, native: true}} {
		t.Run(rd.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				pub := newRecPublisher()
				d, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxHold(time.Second), dlq.WithMaxDeferred(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				l, err := ratelimit.New(ratelimit.WithRate(20), ratelimit.WithMode(ratelimit.ModeReject))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				var rejected atomic.Int64
				limited := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
				h := d.Middleware(func(m *message.Message) ([]*message.Message, error) {
					out, err := limited(m)
					if errors.Is(err, ratelimit.ErrLimited) {
						rejected.Add(1)
					}
					return out, err
				})
				msgs := make([]*message.Message, 300)
				for i := range msgs {
					msgs[i] = message.NewMessage("m"+strconv.Itoa(i), nil)
				}
				fates := deliverAll(t, rd, h, msgs, 10000)
				deliveries := 0
				for _, f := range fates {
					deliveries += f.deliveries
				}
				letters := pub.published(testDLQ)
				t.Logf("%d rejections, %d deliveries, %d dead letters for %d messages", rejected.Load(), deliveries, len(letters), len(msgs))
				if len(letters) != 0 {
					t.Errorf("%d of %d healthy messages dead-lettered as deferred too long; the limiter admits them all within 15 s", len(letters), len(msgs))
				}
				if n := rejected.Load(); n > 2*int64(len(msgs)) {
					t.Errorf("%d rejections for %d messages, want each about once", n, len(msgs))
				}
			})
		})
	}
}
