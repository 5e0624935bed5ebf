// Package service wires a Watermill service from a levee.yaml in a few
// lines: the transport its transport section describes, a router with the
// transport's RetryAfter middleware (a deferred message is redelivered
// after its delay), the store section's shared attempt counter and
// dead-letter monitor (Service.WatchDeadLetters: every dead letter is
// recorded in the store, where `levee dlq` reads it), the fleet section's
// Redis store for the handlers' fleet sections (docs/FLEET.md), and every
// configured handler's Levee stack, bounded by the transport's ack
// deadline.
//
//	cfg, err := config.Load("levee.yaml")
//	svc, err := service.New(ctx, cfg, config.Deps{Logger: logger})
//	svc.Handle("payments", "payments", pay)             // a message at a time
//	svc.HandleBatch("inventory", "inventory", reserve)  // the batch section
//	err = svc.Run(ctx)                                  // until ctx ends
//	svc.Close()
//
// Run stops when ctx ends: derive ctx from signal.NotifyContext with
// os.Interrupt and syscall.SIGTERM, so that a deploy's SIGTERM stops the
// service cleanly and the messages it held go to another consumer at
// once (docs/TRANSPORTS.md, "Shutdown"); killed by the signal, they wait
// for the broker's redelivery (ack_deadline on NATS and Redis).
//
// New fills what the transport knows into the config.Deps it is given
// (zero fields only): the publisher for dead letters, the messaging
// system, the messages in flight, and MaxHold, 80% of the ack deadline,
// so that no wait outlasts it. Handlers the file does not configure run
// bare; a configured handler that is never registered makes Run fail, and
// so do a dlq.topic that is the handler's own topic, a batch section on a
// handler registered with Handle rather than HandleBatch, a topic or
// dead-letter topic the transport cannot carry (Transport.CheckTopic: over
// PostgreSQL, longer than 53 bytes), and, over a broker, two handlers on
// one topic (they would share the transport's
// consumer group and each get only some of its messages; see
// docs/TRANSPORTS.md, "Known limits").
//
// A Service is not safe for concurrent use while it is being set up
// (New, Handle, HandleBatch); Run and Close may be called from different
// goroutines, and Close is idempotent.
package service
