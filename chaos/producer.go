package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/kafka"
)

// background runs goroutines and waits for them.
type background struct{ wg sync.WaitGroup }

func (b *background) go_(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

func (b *background) wait() { b.wg.Wait() }

// produceChunk is how many messages the producer publishes per call.
const produceChunk = 100

// produce publishes the plan's messages in order, paced at the plan's rate
// (unpaced during an overload fault). Each message is recorded in the
// ledger before its publish; a failed publish is retried until it
// succeeds or ctx ends (an at-least-once producer).
func produce(ctx context.Context, p *Plan, a *assigner, l *Ledger, pub message.Publisher, runID, topicIn, topicBatch string,
	start time.Time, tl *timeline) error {
	failures := 0
	for lo := 0; lo < p.Messages; lo += produceChunk {
		hi := min(lo+produceChunk, p.Messages)
		if p.Rate > 0 {
			if _, over := p.active(FaultOverload, time.Since(start)); !over {
				due := start.Add(time.Duration(float64(lo) / p.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					timer := time.NewTimer(d)
					select {
					case <-timer.C:
					case <-ctx.Done():
						timer.Stop()
						return ctx.Err()
					}
				}
			}
		}
		var in, bat []*message.Message
		for id := lo; id < hi; id++ {
			d := a.draw(p)
			msg := newMessage(runID, id, d, p.OrderKeys)
			l.Sent(id, d.fate)
			if d.toBatch {
				bat = append(bat, msg)
			} else {
				in = append(in, msg)
			}
		}
		for _, part := range []struct {
			topic string
			msgs  []*message.Message
		}{{topicIn, in}, {topicBatch, bat}} {
			if len(part.msgs) == 0 {
				continue
			}
			for {
				err := pub.Publish(part.topic, part.msgs...)
				if err == nil {
					break
				}
				failures++
				for _, m := range part.msgs {
					if id, err := strconv.Atoi(m.Metadata.Get(MetaID)); err == nil {
						l.Republished(id)
					}
				}
				if failures == 1 || failures%100 == 0 {
					tl.add("producer: publish failed (%d so far), retrying: %v", failures, err)
				}
				timer := time.NewTimer(100 * time.Millisecond)
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					return fmt.Errorf("levee/chaos: publishing message %d: %w", lo, err)
				}
			}
		}
	}
	tl.add("producer: %d messages published", p.Messages)
	return nil
}

// drawn is what the seed chose for one message.
type drawn struct {
	fate     Fate
	toBatch  bool // sent to the batch handler's topic
	priority int
}

// draw draws the next message's fate, topic and priority, in the order
// the producer sends them: a consumer process draws the same sequence to
// know every message's fate.
func (a *assigner) draw(p *Plan) drawn {
	d := drawn{fate: a.next()}
	d.toBatch = a.float() < p.BatchShare
	if d.toBatch && d.fate.Kind == Panic {
		d.fate.Kind = Permanent // the batcher re-runs a panicking batch to isolate it: not a one-call fate
	}
	d.priority = int(a.float() * 10)
	return d
}

// newMessage builds message id as drawn. With orderKeys > 0 it carries
// its key (id % orderKeys) as levee_partition_key, which a transport that
// promises order per key (Kafka) keeps in order.
func newMessage(runID string, id int, d drawn, orderKeys int) *message.Message {
	f := d.fate
	valid := f.Kind != Validation
	payload := fmt.Appendf(nil, `{"id":%d,"valid":%t,"fate":%q}`, id, valid, f.String())
	msg := message.NewMessage("chaos-"+runID+"-"+strconv.Itoa(id), payload)
	msg.Metadata.Set(MetaID, strconv.Itoa(id))
	msg.Metadata.Set(MetaRun, runID)
	msg.Metadata.Set(levee.KeyPriority, strconv.Itoa(d.priority))
	if orderKeys > 0 {
		msg.Metadata.Set(kafka.MetadataPartitionKey, strconv.Itoa(id%orderKeys))
	}
	if f.Kind == Forged {
		msg.Metadata.Set(levee.KeyDeliveryCount, forgedDeliveryCount)
		msg.Metadata.Set(levee.KeyRetryAfter, forgedRetryAfter)
		msg.Metadata.Set(levee.KeyRedeliverAt, strconv.FormatInt(time.Now().Add(24*time.Hour).UnixMilli(), 10))
	}
	return msg
}
