package dlqops

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
)

// Replayer defaults.
const (
	DefaultReplayRate  = 50.0 // messages per second
	DefaultMaxReplays  = 3
	DefaultReplayLease = 5 * time.Minute
	DefaultReplayBatch = 100
)

// Validator re-validates a payload before it is replayed to topic; a
// non-nil error keeps the letter dead with the error as its reason.
// Package validate provides one built from JSON schemas.
type Validator func(topic string, payload []byte) error

// WithReplayTopics sets the topics NewReplayer's replays may publish to: a
// letter whose original topic (dlq.KeyOriginalTopic, which whoever
// published the letter chose) is not one of them stays dead with reason
// ErrTopicNotAllowed, in dry runs too. The last call wins.
//
// Default (no call, or no topics): a letter may go back only to the topic
// its DLQ topic is named after, T for a letter the Monitor recorded from
// "T.dlq" (dlq.DefaultTopic, the Retrier's default naming), so a letter
// published straight onto a DLQ topic cannot send its replay to another
// topic. Letters of a DLQ topic shared by several topics (dlq.topic,
// dlq.WithTopicFunc) are held until their topics are listed. An empty or
// blank topic, or one longer than 256 bytes (a stored original topic is
// cut there), is invalid.
func WithReplayTopics(topics ...string) Option {
	return option{"WithReplayTopics", forReplayer, func(c *config) {
		c.topics, c.badTopic = nil, nil
		for _, t := range topics {
			if err := checkReplayTopic(t); err != nil {
				c.badTopic = err
				return
			}
			if c.topics == nil {
				c.topics = map[string]bool{}
			}
			c.topics[t] = true
		}
	}}
}

// checkReplayTopic checks one entry of WithReplayTopics or
// StoreConfig.ReplayTopics.
func checkReplayTopic(t string) error {
	switch {
	case strings.TrimSpace(t) == "":
		return fmt.Errorf("replay topic %q is blank", t)
	case strings.TrimSpace(t) != t:
		return fmt.Errorf("replay topic %q has surrounding spaces", t)
	case len(t) > maxNameLength:
		return fmt.Errorf("replay topic %.32q... is longer than %d bytes", t, maxNameLength)
	}
	return nil
}

// WithReplayRate sets NewReplayer's velocity limit in messages per second,
// enforced with a token bucket of burst 1. Default 50/s; zero means
// unlimited; negative, NaN or infinite is invalid.
func WithReplayRate(perSecond float64) Option {
	return option{"WithReplayRate", forReplayer, func(c *config) { c.rate = perSecond }}
}

// WithMaxReplays sets how often NewReplayer replays one message: a letter
// whose replay count (dlq.KeyReplayCount) is already n stays dead with
// reason ErrMaxReplays. Default 3; it must be at least 1.
func WithMaxReplays(n int) Option {
	return option{"WithMaxReplays", forReplayer, func(c *config) { c.maxReplays = n }}
}

// WithReplayValidator sets the re-validation NewReplayer runs on each
// payload before its replay. Default none; nil means none.
func WithReplayValidator(v Validator) Option {
	return option{"WithReplayValidator", forReplayer, func(c *config) { c.validator = v }}
}

// WithReplayOwner names NewReplayer's replayer in claims. Default
// "<hostname>-<pid>-<random>"; empty means the default.
func WithReplayOwner(owner string) Option {
	return option{"WithReplayOwner", forReplayer, func(c *config) { c.owner = owner }}
}

// WithReplayLease sets how long NewReplayer's claims hold. A replayer that
// crashes leaves its claimed letters to be claimed again after it. A run
// claims no more letters at once than the velocity limit lets it publish
// in half the lease (at least one, whose token it takes before claiming),
// so a slow rate never outlives a claim. Default 5m; it must be positive.
func WithReplayLease(d time.Duration) Option {
	return option{"WithReplayLease", forReplayer, func(c *config) { c.lease = d }}
}

// WithReplayBatch sets the most letters one claim of NewReplayer takes
// (fewer when the velocity limit could not publish them within half the
// lease). Default 100; it must be positive.
func WithReplayBatch(n int) Option {
	return option{"WithReplayBatch", forReplayer, func(c *config) { c.batch = n }}
}

// WithReplayUUID sets NewReplayer's generator of replayed message UUIDs.
// Default watermill.NewUUID; nil means the default.
func WithReplayUUID(f func() string) Option {
	return option{"WithReplayUUID", forReplayer, func(c *config) { c.newUUID = f }}
}

// WithReplayProgress sets a callback NewReplayer's runs call after each
// letter (on the replaying goroutine; keep it short). Default none; nil
// means none.
func WithReplayProgress(f func(ReplayProgress)) Option {
	return option{"WithReplayProgress", forReplayer, func(c *config) { c.progress = f }}
}

// WithReplaySpan sets a hook that starts the span of each replay publish
// of NewReplayer; the replayer ends it after the publish (recording a
// publish error). The hook gets the message with the dead letter's
// traceparent still in place, so tracing.Tracer.StartReplay fits: it moves
// the traceparent to levee.KeyOriginalTraceparent, starts a new root span
// linked to the original trace, and injects it. Default none: the replayer
// moves the traceparent itself and publishes without a span; nil means
// none.
func WithReplaySpan(f func(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span)) Option {
	return option{"WithReplaySpan", forReplayer, func(c *config) { c.startSpan = f }}
}

// validateReplayer checks the Replayer's settings.
func (c *config) validateReplayer() error {
	switch {
	case c.misplaced != nil:
		return c.misplaced
	case c.badTopic != nil:
		return fmt.Errorf("%w: %w", ErrInvalidConfig, c.badTopic)
	case math.IsNaN(c.rate) || math.IsInf(c.rate, 0) || c.rate < 0:
		return fmt.Errorf("%w: replay rate %v must be a finite number >= 0", ErrInvalidConfig, c.rate)
	case c.maxReplays < 1:
		return fmt.Errorf("%w: max replays %d must be at least 1", ErrInvalidConfig, c.maxReplays)
	case c.lease <= 0:
		return fmt.Errorf("%w: replay lease %s must be positive", ErrInvalidConfig, c.lease)
	case c.batch <= 0:
		return fmt.Errorf("%w: replay batch %d must be positive", ErrInvalidConfig, c.batch)
	}
	return nil
}
