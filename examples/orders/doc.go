// Command orders is Levee's main demo: an e-commerce flow over Watermill.
//
// Order intake publishes orders (some VIP, some malformed). Four handlers
// consume them: payments (a simulated gateway with an injectable outage,
// -outage 5s), inventory (batched; an idempotent consumer: dedup keyed by
// the order, -duplicates N publishes every N-th reserve request twice),
// notifications, and sms (a rate-limited SMS provider). Each handler's
// resilience stack comes from levee.yaml. The demo runs on the embedded
// GoChannel transport with no setup, finishes by itself, and prints a
// report per handler. On a broker (-transport) it removes the queues,
// streams or tables it created at the end, unless -keep.
//
//	go run ./examples/orders
//	go run ./examples/orders -orders 1000 -outage 5s
package main
