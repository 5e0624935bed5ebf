package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/priority"
)

// intake publishes msgs at rate per second (all at once for rate <= 0),
// stamping each with its publish time.
func intake(ctx context.Context, pub message.Publisher, topic string, msgs []*message.Message, rate float64) error {
	if rate <= 0 {
		stamp(msgs...)
		return pub.Publish(topic, msgs...)
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for _, m := range msgs {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		next = next.Add(interval)
		stamp(m)
		if err := pub.Publish(topic, m); err != nil {
			return fmt.Errorf("publishing orders: %w", err)
		}
	}
	return nil
}

func stamp(msgs ...*message.Message) {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	for _, m := range msgs {
		m.Metadata.Set(metaPublishedAt, now)
	}
}

// makeOrders builds the orders to publish: VIP orders carry priority 9,
// some phones are invalid, and malformed orders are spread among them.
func makeOrders(o options) []*message.Message {
	var msgs []*message.Message
	vipEvery := 0
	if o.vipShare > 0 {
		vipEvery = int(1 / o.vipShare)
	}
	badEvery := 0
	if o.badPhones > 0 {
		badEvery = o.orders / o.badPhones
	}
	for i := 0; i < o.orders; i++ {
		order := Order{
			ID:       fmt.Sprintf("o-%05d", i),
			Customer: fmt.Sprintf("c-%03d", i%40),
			Phone:    fmt.Sprintf("+4915%08d", i),
			VIP:      vipEvery > 0 && i%vipEvery == 0,
			Amount:   1000 + i%5000,
			Items:    []Item{{SKU: fmt.Sprintf("sku-%d", i%17), Qty: 1 + i%3}},
		}
		if o.big > 0 && i%(o.orders/o.big) == o.orders/o.big/2 && i/(o.orders/o.big) < o.big {
			order.Amount = 250000 + i // 2,500 EUR and more: over the default gateway limit
		}
		if badEvery > 0 && i%badEvery == badEvery-1 && i/badEvery < o.badPhones {
			order.Phone = fmt.Sprintf("0049-%d", i) // not E.164: the SMS is rejected by its schema
		}
		payload, _ := json.Marshal(order)
		m := message.NewMessage(watermill.NewUUID(), payload)
		if order.VIP {
			priority.Set(m, priority.MaxPriority)
		}
		msgs = append(msgs, m)
	}
	for i := 0; i < o.malformed; i++ {
		var payload string
		switch i % 3 {
		case 0:
			payload = fmt.Sprintf(`{"id": "bad-%d", "items": [`, i) // truncated JSON
		case 1:
			payload = fmt.Sprintf(`{"id": "bad-%d", "customer": "c-1", "amount_cents": -5, "items": []}`, i)
		default:
			payload = fmt.Sprintf(`{"id": "bad-%d", "customer": "c-1", "amount_cents": 100}`, i) // no items
		}
		bad := message.NewMessage(watermill.NewUUID(), []byte(payload))
		// Spread the malformed ones among the good ones.
		at := (i*7919 + 13) % (len(msgs) + 1)
		msgs = append(msgs[:at], append([]*message.Message{bad}, msgs[at:]...)...)
	}
	return msgs
}
