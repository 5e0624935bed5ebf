package dlq

import (
	"bytes"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/internal/trunc"
)

// DefaultTopic returns the dead-letter topic of a Retrier without
// WithTopic or WithTopicFunc for a message consumed from subscribed:
// subscribed+".dlq" ("" when subscribed is ""). The replayer of dlq/dlqops
// sends a letter back, by default, only to the topic its DLQ topic is
// named after this way.
func DefaultTopic(subscribed string) string {
	if subscribed == "" {
		return ""
	}
	return subscribed + ".dlq"
}

// Topic returns the topic this Retrier dead-letters a message consumed
// from subscribed to: WithTopic's, WithTopicFunc's or DefaultTopic's
// ("" when there is none). A dlqops.Monitor subscribes to it.
func (r *Retrier) Topic(subscribed string) string { return r.dlqTopic(subscribed) }

// dlqTopic returns the dead-letter topic for a message consumed from
// subscribed.
func (r *Retrier) dlqTopic(subscribed string) string {
	switch {
	case r.cfg.topic != "":
		return r.cfg.topic
	case r.cfg.topicFunc != nil:
		return r.cfg.topicFunc(subscribed)
	}
	return DefaultTopic(subscribed)
}

func (w *wrapped) deadLetter(msg *message.Message, n *names, err error, class Class, attempts int, first, last time.Time) ([]*message.Message, error) {
	r := w.r
	subscribed := message.SubscribeTopicFromCtx(msg.Context())
	if subscribed == "" {
		subscribed = n.topic
	}
	handler := message.HandlerNameFromCtx(msg.Context())
	if handler == "" {
		handler = n.handler
	}
	topic := r.dlqTopic(subscribed)
	if topic == "" {
		return nil, w.publishFailed(msg, n, &PublishError{Err: ErrNoTopic, Cause: err}, class, attempts, first)
	}
	if topic == subscribed {
		return nil, w.publishFailed(msg, n, &PublishError{Topic: topic, Err: ErrTopicLoop, Cause: err}, class, attempts, first)
	}
	dl := r.buildDeadLetter(msg, err, class, attempts, first, last, handler, subscribed, topic, w.location)
	fp := dl.Metadata[KeyFingerprint]
	if perr := w.publish(msg, topic, dl, handler); perr != nil {
		return nil, w.publishFailed(msg, n, &PublishError{Topic: topic, Err: perr, Cause: err}, class, attempts, first)
	}
	r.table.forget(w.key(msg))
	// Tell the outer tracing and metrics layers that this nil result is a
	// dead letter (outcome dead_lettered), not a plain ack.
	telemetry.MarkDeadLettered(msg.Context(), string(class), err)
	if opt, ok := n.attrs.byClass[class]; ok {
		r.ins.deadLetters.Add(msg.Context(), 1, opt)
	}
	telemetry.AddDeadLetterEvent(msg.Context(), string(class), topic, fp, attempts)
	r.cfg.logger.Info("levee dlq: dead-lettered", watermill.LogFields{
		"uuid": trunc.Log(msg.UUID), "handler": handler, "dlq_topic": topic, "class": string(class),
		"fingerprint": fp, "attempts": attempts, "err": trunc.LogError(err)})
	if r.cfg.onDeadLetter != nil {
		r.cfg.onDeadLetter(DeadLetterInfo{Handler: handler, Topic: subscribed, DLQTopic: topic,
			MessageUUID: msg.UUID, Class: class, Fingerprint: fp, Attempts: attempts, Err: err})
	}
	return nil, nil
}

// publishFailed records a failed dead-lettering so the redelivery keeps the
// attempt count and waits Backoff.Cap(consecutive publish failures) before
// trying again (a transport without native delay would otherwise spin), or
// at least TooLargeRetryAfter for a letter too large for the broker even
// cut to its core, and returns pe with that delay as its RetryAfter.
func (w *wrapped) publishFailed(msg *message.Message, n *names, pe *PublishError, class Class, attempts int, first time.Time) error {
	r := w.r
	prev, _ := r.table.get(w.key(msg))
	fails := min(prev.publishFails, maxCount) + 1
	pe.Delay = r.cfg.backoff.Cap(fails)
	reason := publishReason(pe.Err)
	if reason == reasonTooLarge {
		pe.Delay = max(pe.Delay, TooLargeRetryAfter)
	}
	r.table.put(w.key(msg), record{attempts: attempts, first: first, notBefore: time.Now().Add(pe.Delay), deferrals: prev.deferrals,
		err: pe.Cause, publishFails: fails, class: class})
	r.ins.publishFailures.Add(msg.Context(), 1, n.attrs.byReason[reason])
	text := "levee dlq: dead-lettering failed, message Nacked"
	if reason == reasonTooLarge {
		text = "levee dlq: dead letter too large for the broker even cut to its core keys, message Nacked " +
			"(it stays on the topic: raise the broker's size limit or take the message off by hand)"
	}
	r.cfg.logger.Error(text, trunc.LogError(pe.Err), watermill.LogFields{
		"uuid": trunc.Log(msg.UUID), "handler": n.handler, "dlq_topic": pe.Topic, "class": string(class),
		"reason": reason, "cause": trunc.LogError(pe.Cause), "retry_after": pe.Delay})
	return pe
}

// buildDeadLetter returns a new message for the DLQ: the same UUID (a fresh
// one when the original has none), the payload byte for byte, every
// original metadata key, and the failure keys, replacing earlier ones. Its
// context is the original's, so a tracing publisher links it.
func (r *Retrier) buildDeadLetter(msg *message.Message, err error, class Class, attempts int, first, last time.Time, handler, subscribed, topic, location string) *message.Message {
	id := msg.UUID
	if id == "" {
		id = watermill.NewUUID()
	}
	dl := message.NewMessage(id, bytes.Clone(msg.Payload))
	for k, v := range msg.Metadata {
		dl.Metadata[k] = v
	}
	for _, k := range failureKeys {
		delete(dl.Metadata, k)
	}
	// A dead letter carries no control key of the consumed message: its
	// attempts are in KeyAttempts, and a replay must start afresh.
	levee.StripControl(dl.Metadata)
	md := dl.Metadata
	errMsg := err.Error()
	errType := ErrorType(err)
	md[KeyOriginalTopic] = subscribed
	md[KeyHandler] = handler
	if r.cfg.consumerGroup != "" {
		md[KeyConsumerGroup] = r.cfg.consumerGroup
	}
	md[KeyError] = trunc.String(errMsg, r.cfg.maxErrorLength)
	md[KeyErrorType] = errType
	md[KeyErrorClass] = string(class)
	// A panic's stack, and the first frame of the project's code in it,
	// which groups the letter (fingerprintAt) and is its code location.
	stack, f, _ := panicDetails(err, r.origin)
	md[KeyFingerprint] = fingerprintAt(errType, failureKey(err, errMsg), f.fn)
	if stack != "" {
		md[KeyStack] = trunc.String(stack, MaxStackLength)
	}
	if f.fn != "" {
		location = f.location()
	}
	if location != "" {
		md[KeyCodeLocation] = location
	}
	md[KeyAttempts] = strconv.Itoa(attempts)
	md[KeyFirstFailureAt] = FormatTime(first)
	md[KeyLastFailureAt] = FormatTime(last)
	md[KeyDLQTopic] = topic
	md[KeyReplayCount] = strconv.Itoa(ReplayCount(msg.Metadata))
	if orig := msg.Metadata[KeyOriginalUUID]; orig == "" || len(orig) > 256 {
		md[KeyOriginalUUID] = id
	}
	if v, ok := validationMetadata(err, r.cfg.maxErrorLength); ok {
		md[KeyValidationErrors] = v
	}
	dl.SetContext(msg.Context())
	return dl
}

// deadLetterAgain dead-letters a redelivered message whose dead-lettering
// failed before: its attempts are spent (or its error was not transient),
// so the handler is not called again; the letter carries the recorded
// error, class and attempts. (It used to call the handler once more per
// failed publish: a poison message got more than max attempts, found by
// the chaos suite, docs/RELIABILITY.md.)
func (w *wrapped) deadLetterAgain(msg *message.Message, rec record) ([]*message.Message, error) {
	return w.deadLetter(msg, w.resolve(msg), rec.err, rec.class, rec.attempts, rec.first, time.Now())
}
