package dlq

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/trunc"
)

// This file holds what is done with a dead letter the broker refuses:
// publishing it cut down, and the reason a refusal is counted with.

// CompactErrorLength bounds KeyError on a compacted dead letter
// (KeyCompacted).
const CompactErrorLength = 256

// CoreErrorLength bounds KeyError on a dead letter cut to its core
// (KeyCompacted CompactedCore).
const CoreErrorLength = 128

// CompactedCore is KeyCompacted's value on a dead letter cut to its core:
// of Levee's keys it keeps only KeyError (cut to CoreErrorLength bytes),
// KeyErrorClass, KeyFingerprint, KeyOriginalTopic, KeyHandler and
// KeyConsumerGroup (part of the letter's identity). The payload and every
// key of the consumed message are kept as they came.
const CompactedCore = "core"

// TooLargeRetryAfter is the least redelivery delay of a message whose dead
// letter the broker refuses for its size even cut to its core: it cannot
// go through before someone raises the limit or takes it off the topic, so
// it is not tried again every Backoff.Max.
const TooLargeRetryAfter = time.Minute

// coreKeys are the failure keys a letter cut to its core keeps.
var coreKeys = [...]string{KeyError, KeyErrorClass, KeyFingerprint, KeyOriginalTopic, KeyHandler, KeyConsumerGroup}

// publish publishes the dead letter dl of msg to topic. When the broker
// refuses it, it is published cut down, first compacted (compactLetter),
// then cut to its core (coreLetter), each tried only when the previous try
// failed for size (levee.ErrTooLarge, which Levee's NATS, Kafka and
// RabbitMQ transports report) or, for a publisher that does not tell, when the
// message's letter failed to publish before: the compacted one from the
// second refusal on, the core one from the third (a broker that is down
// refuses them all, so the whole letter is tried first). It returns the
// last publish error when none went through.
func (w *wrapped) publish(msg *message.Message, topic string, dl *message.Message, handler string) error {
	r := w.r
	perr := r.pub.Publish(topic, dl)
	if perr == nil {
		return nil
	}
	rec, _ := r.table.get(w.key(msg))
	for i, cut := range [...]func() (*message.Message, bool){
		func() (*message.Message, bool) { return compactLetter(dl) },
		func() (*message.Message, bool) { return coreLetter(dl, msg.Metadata) },
	} {
		if !errors.Is(perr, levee.ErrTooLarge) && rec.publishFails <= i {
			return perr
		}
		c, ok := cut()
		if !ok {
			continue
		}
		err := r.pub.Publish(topic, c)
		if err != nil {
			perr = err
			continue
		}
		r.cfg.logger.Info("levee dlq: dead letter published cut down (the whole letter failed to publish)",
			watermill.LogFields{"uuid": trunc.Log(msg.UUID), "handler": handler, "dlq_topic": topic,
				"compacted": c.Metadata[KeyCompacted], "err": trunc.LogError(perr)})
		return nil
	}
	return perr
}

// compactLetter returns dl without KeyStack and KeyValidationErrors and
// with KeyError cut to CompactErrorLength, the keys it changed listed in
// KeyCompacted; ok is false when it would change nothing.
func compactLetter(dl *message.Message) (*message.Message, bool) {
	var dropped []string
	for _, k := range []string{KeyStack, KeyValidationErrors} {
		if _, ok := dl.Metadata[k]; ok {
			dropped = append(dropped, k)
		}
	}
	cut := trunc.String(dl.Metadata[KeyError], CompactErrorLength)
	if cut != dl.Metadata[KeyError] {
		dropped = append(dropped, KeyError)
	}
	if len(dropped) == 0 {
		return nil, false
	}
	c := cloneLetter(dl)
	delete(c.Metadata, KeyStack)
	delete(c.Metadata, KeyValidationErrors)
	c.Metadata[KeyError] = cut
	c.Metadata[KeyCompacted] = strings.Join(dropped, ",")
	return c, true
}

// coreLetter returns dl cut to its core (see CompactedCore): every failure
// key but coreKeys dropped, KeyError cut to CoreErrorLength, and
// KeyReplayCount and KeyOriginalUUID dropped unless the consumed message
// (whose metadata is orig) carried them. Every other key is the consumed
// message's and is kept.
func coreLetter(dl *message.Message, orig message.Metadata) (*message.Message, bool) {
	c := cloneLetter(dl)
	for _, k := range failureKeys {
		if !slices.Contains(coreKeys[:], k) {
			delete(c.Metadata, k)
		}
	}
	for _, k := range [...]string{KeyReplayCount, KeyOriginalUUID} {
		if _, ok := orig[k]; !ok {
			delete(c.Metadata, k)
		}
	}
	c.Metadata[KeyError] = trunc.String(dl.Metadata[KeyError], CoreErrorLength)
	c.Metadata[KeyCompacted] = CompactedCore
	return c, true
}

// cloneLetter returns a copy of dl with its own metadata map and dl's
// context (message.Message.Copy drops the context).
func cloneLetter(dl *message.Message) *message.Message {
	c := dl.Copy()
	c.SetContext(dl.Context())
	return c
}

// The reasons levee.dlq.publish_failures is counted with.
const (
	reasonTooLarge  = "too_large"     // the broker refused the letter, cut to its core, for its size
	reasonNoTopic   = "no_topic"      // no dead-letter topic (ErrNoTopic)
	reasonTopicLoop = "topic_loop"    // the dead-letter topic is the consumed one (ErrTopicLoop)
	reasonPublish   = "publish_error" // any other publish error (the broker down, the topic missing)
)

var publishReasons = [...]string{reasonTooLarge, reasonNoTopic, reasonTopicLoop, reasonPublish}

// publishReason is the reason a failed dead-lettering with error err is
// counted with.
func publishReason(err error) string {
	switch {
	case errors.Is(err, levee.ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, ErrNoTopic):
		return reasonNoTopic
	case errors.Is(err, ErrTopicLoop):
		return reasonTopicLoop
	}
	return reasonPublish
}
