package dlqtest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Downstream is a publisher standing for the consumers of replayed
// messages: while broken it dead-letters every message it gets at once, as
// dlq.Retrier does (the message's UUID and metadata, lineage included,
// with new failure keys at the current time, handler "h"), and records the
// letter with its Monitor; once fixed it processes them. Safe for
// concurrent use.
type Downstream struct {
	mon    *dlqops.Monitor
	broken atomic.Bool
	mu     sync.Mutex
	got    []*message.Message // guarded by mu
}

// NewDownstream returns a broken Downstream recording into s.
func NewDownstream(s dlqops.Store) (*Downstream, error) {
	mon, err := dlqops.NewMonitor(s)
	if err != nil {
		return nil, err
	}
	d := &Downstream{mon: mon}
	d.broken.Store(true)
	return d, nil
}

// SetBroken breaks or fixes the downstream.
func (d *Downstream) SetBroken(b bool) { d.broken.Store(b) }

// Received returns how many messages it got.
func (d *Downstream) Received() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

// Publish implements message.Publisher.
func (d *Downstream) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		d.mu.Lock()
		d.got = append(d.got, m)
		d.mu.Unlock()
		if !d.broken.Load() {
			continue
		}
		dl := message.NewMessage(m.UUID, m.Payload)
		dl.Metadata = maps.Clone(m.Metadata)
		for _, k := range dlq.FailureKeys() {
			delete(dl.Metadata, k)
		}
		errText := "inventory service still down"
		dl.Metadata[dlq.KeyOriginalTopic] = topic
		dl.Metadata[dlq.KeyHandler] = "h"
		dl.Metadata[dlq.KeyError] = errText
		dl.Metadata[dlq.KeyErrorClass] = "permanent"
		dl.Metadata[dlq.KeyFingerprint] = dlq.Fingerprint("*errors.errorString", errText)
		dl.Metadata[dlq.KeyAttempts] = "1"
		dl.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(time.Now())
		dl.Metadata[dlq.KeyDLQTopic] = topic + ".dlq"
		if err := d.mon.Record(context.Background(), topic+".dlq", dl); err != nil {
			return fmt.Errorf("dead-lettering the replay: %w", err)
		}
	}
	return nil
}

// Close implements message.Publisher.
func (d *Downstream) Close() error { return nil }
