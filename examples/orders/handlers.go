package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// Topics of the flow.
const (
	topicOrders  = "orders"            // order intake -> payments
	topicReserve = "inventory.reserve" // payments -> inventory
	topicPaid    = "order.paid"        // payments -> notifications
	topicSMS     = "sms.send"          // notifications -> sms
)

// The handlers, in report order.
var handlerNames = []string{"payments", "inventory", "notifications", "sms"}

// flowTopics are the flow's topics as named on this run's transport.
type flowTopics struct{ orders, reserve, paid, sms string }

func flowTopicsOf(n topicNames) flowTopics {
	return flowTopics{orders: n.of(topicOrders), reserve: n.of(topicReserve), paid: n.of(topicPaid), sms: n.of(topicSMS)}
}

// all lists the topics, each with a dead-letter topic of its own.
func (t flowTopics) all() []string { return []string{t.orders, t.reserve, t.paid, t.sms} }

// addHandlers adds the four handlers of the flow and the simulated
// services they call.
func (d *demo) addHandlers(ctx context.Context) error {
	d.gateway = NewGateway(d.o.service, d.o.outageAfter, d.o.outage, d.o.transient, d.o.seed)
	d.gateway.SetLimit(d.o.limit)
	d.inventory = NewInventory()
	d.sms = &SMSProvider{}
	sub, t := d.tr.Subscriber, d.tracker

	// payments: charge the order, then announce it paid to notifications
	// and ask inventory to reserve it. A malformed order never reaches this
	// code: the dlq slot validates it against schemas/order.json and
	// dead-letters it with class validation.
	d.router.AddConsumerHandler("payments", d.topics.orders, sub, t.Consumer("payments", d.payments))

	// inventory: updates are batched; each message joins a batch and gets
	// its own result when the batch is written.
	var sink inventorySink = memorySink{inv: d.inventory}
	if d.o.postgres != "" {
		pg, err := newPGSink(ctx, d.o.postgres, d.inventory)
		if err != nil {
			return err
		}
		d.pg, sink = pg, pg
	}
	d.onClose(sink.Close)
	// The inventory section's batch settings, with the demo's telemetry.
	batcher, err := d.cfg.Batcher("inventory", inventoryBatch(sink),
		config.Deps{Logger: d.logger, TracerProvider: d.tel.tp, MeterProvider: d.tel.mp})
	if err != nil {
		return err
	}
	d.onClose(func() { batcher.Close() })
	d.router.AddConsumerHandler("inventory", d.topics.reserve, sub, t.Consumer("inventory", batcher.Handler))

	// notifications: turn a paid order into an SMS request.
	// The router closes a handler's publisher when the handler stops; the
	// transport is shared and closed once, by closeTransport.
	d.router.AddHandler("notifications", d.topics.paid, sub, d.topics.sms, keepOpen{d.pub}, t.Handler("notifications", notify))

	// sms: send through the provider. Requests with an invalid number are
	// dead-lettered by the dlq slot (schemas/sms.json) before this runs.
	d.router.AddConsumerHandler("sms", d.topics.sms, sub, t.Consumer("sms", d.sendSMS))
	return nil
}

// payments charges the order and publishes it to inventory and
// notifications. Publishing before the ack keeps at-least-once (a retry
// may publish twice; inventory rows are keyed by message, the SMS may
// repeat).
func (d *demo) payments(msg *message.Message) ([]*message.Message, error) {
	order, err := decodeOrder(msg.Payload)
	if err != nil {
		return nil, dlq.Permanent(err)
	}
	if err := d.gateway.Charge(order); err != nil {
		return nil, err // transient: retried with backoff; an outage trips the breaker
	}
	for _, topic := range []string{d.topics.reserve, d.topics.paid} {
		out := message.NewMessage(watermill.NewUUID(), msg.Payload)
		out.SetContext(msg.Context()) // the trace continues
		if p := msg.Metadata.Get(levee.KeyPriority); p != "" {
			out.Metadata.Set(levee.KeyPriority, p)
		}
		stamp(out)
		if topic == d.topics.reserve {
			out.Metadata.Set(keyOrderRef, d.orderRef(order.ID)) // inventory's dedup identity
			if err := d.publishReserve(topic, out); err != nil {
				return nil, err
			}
			continue
		}
		if err := d.pub.Publish(topic, out); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// notify turns a paid order into an SMS request.
func notify(msg *message.Message) ([]*message.Message, error) {
	order, err := decodeOrder(msg.Payload)
	if err != nil {
		return nil, dlq.Permanent(err)
	}
	payload, err := json.Marshal(SMS{To: order.Phone, Customer: order.Customer,
		Body: fmt.Sprintf("Order %s paid: %d.%02d EUR", order.ID, order.Amount/100, order.Amount%100)})
	if err != nil {
		return nil, err
	}
	req := message.NewMessage(watermill.NewUUID(), payload)
	req.Metadata.Set("customer_id", order.Customer) // the sms rate limit's key
	return []*message.Message{req}, nil
}

// sendSMS sends an SMS request through the provider.
func (d *demo) sendSMS(msg *message.Message) ([]*message.Message, error) {
	var s SMS
	if err := json.Unmarshal(msg.Payload, &s); err != nil {
		return nil, dlq.Permanent(err)
	}
	return nil, d.sms.Send(s.To, s.Body)
}

// keepOpen is a publisher whose Close does nothing: the router closes the
// publisher of each handler that stops, and this one is shared.
type keepOpen struct{ message.Publisher }

func (keepOpen) Close() error { return nil }
