// Command orders is Levee's main demo: an e-commerce flow over Watermill.
//
// Order intake publishes orders (some VIP, some malformed). Three handlers
// consume them: payments (a simulated gateway with an injectable outage,
// -outage 5s), inventory, and notifications (an SMS provider). Each
// handler's resilience stack comes from levee.yaml; inventory is an
// idempotent consumer (dedup keyed by the order, -duplicates N publishes
// every N-th reserve request twice). The demo runs on the
// embedded GoChannel transport with no setup, finishes by itself, and
// prints a report per handler.
//
//	go run ./examples/orders
//	go run ./examples/orders -orders 1000 -outage 5s
package main
