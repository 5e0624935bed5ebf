package levee

import "errors"

// Control keys: the metadata keys Levee acts on when it consumes a
// message. Only Levee sets them: the transport adapter from the broker (the
// delivery count), or Levee on the consuming side (retry-after,
// redeliver-at). Producers' values are stripped at ingress, and a Levee
// publisher never carries them out of the process (see StripControl).
const (
	// KeyDeliveryCount is the transport's 1-based delivery count of a
	// consumed message, set by the adapter from the broker where it counts
	// deliveries (NATS JetStream, RabbitMQ quorum queues).
	KeyDeliveryCount = "levee_delivery_count"
	// KeyRetryAfter is the delay (a Go duration) a Nacked message asks to
	// wait before its redelivery; transports with native delay read it on
	// Nack. Capped at MaxRetryAfter.
	KeyRetryAfter = "levee_retry_after"
	// KeyRedeliverAt is the time (Unix milliseconds, database clock) before
	// which the PostgreSQL transport does not deliver a row it requeued
	// with a delay.
	KeyRedeliverAt = "levee_redeliver_at"
	// KeyUndecodable marks a message the transport could not decode (a
	// Redis stream entry without a UUID, metadata that is not the wire
	// format of Redis Streams or PostgreSQL); its value is the reason. The
	// adapter hands such a message over instead of stalling on it, and the
	// dlq dead-letters it at once with class validation, without calling
	// the handler (ErrUndecodable).
	KeyUndecodable = "levee_undecodable"
)

// ErrUndecodable is wrapped by the error of a message that carries
// KeyUndecodable.
var ErrUndecodable = errors.New("levee: the transport could not decode the message")

// StripControl deletes every control key from md: a transport calls it on
// each consumed message before it sets the values it takes from the broker,
// and a publisher on each message it sends. It does nothing to a nil map.
func StripControl(md map[string]string) {
	delete(md, KeyDeliveryCount)
	delete(md, KeyRetryAfter)
	delete(md, KeyRedeliverAt)
	delete(md, KeyUndecodable)
}

// HasControl reports whether md holds a control key.
func HasControl(md map[string]string) bool {
	if len(md) == 0 {
		return false
	}
	_, a := md[KeyDeliveryCount]
	_, b := md[KeyRetryAfter]
	_, c := md[KeyRedeliverAt]
	_, d := md[KeyUndecodable]
	return a || b || c || d
}

// Keys more than one package reads or writes, which are not control keys:
// a producer may set KeyPriority, and the replayer writes the original
// trace context that the tracing middleware reads.
const (
	// KeyPriority holds a message's priority: a decimal integer, higher
	// runs first. The priority package clamps it to its range and counts
	// garbage; transport adapters map it to a native priority where the
	// broker has one (RabbitMQ x-max-priority).
	KeyPriority = "levee_priority"
	// KeyOriginalTraceparent holds, on a replayed message, the W3C
	// traceparent the dead letter carried. The dlq's replayer writes it;
	// the tracing middleware links the replayed message's consumer span to
	// it. The replayed message does not carry the old traceparent itself:
	// it starts a trace of its own.
	KeyOriginalTraceparent = "levee_original_traceparent"
	// KeyOriginalTracestate is the tracestate that went with
	// KeyOriginalTraceparent.
	KeyOriginalTracestate = "levee_original_tracestate"
)

// KeyOriginalUUID is the UUID of the first message of a dead letter's
// lineage: the failed message's UUID, or the value it already carried (a
// replay). The dlq writes it on a dead letter and the replayer on a
// replayed message (dlq.KeyOriginalUUID is the same key).
const KeyOriginalUUID = "levee_original_uuid"

// KeyDedupID is a message's identity for deduplication (package dedup): the
// dedup middleware writes it on a message that fails or is deferred when
// the identity is not the message UUID (a metadata key, a JSON pointer),
// so its dead letter keeps it, and hides one its key function gives anyway
// from the handler; the replayer
// sets it to a letter's original UUID when the letter has none, so a
// replay of a letter is the same message to the consumer (a replay of a
// message that did succeed is then dropped as a duplicate). `levee dlq
// replay --new-identity` sets it to the replayed message's new UUID
// instead. When present it wins over
// the configured key function. A producer may set it: with the default
// key that gives it no more power than choosing the message UUID; with a
// metadata key or a JSON pointer it decides the identity whatever the key
// says, except that a value equal to the message's KeyOriginalUUID (the
// replayer's fallback for a letter that has none, which a letter
// dead-lettered before the dedup layer ran lacks too: a validation
// failure) yields to a key function that reads another identity.
const KeyDedupID = "levee_dedup_id"
