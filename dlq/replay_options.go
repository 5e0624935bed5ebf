package dlq

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ReplayOption configures a Replayer.
type ReplayOption interface{ apply(*replayConfig) }

type replayOptionFunc func(*replayConfig)

func (f replayOptionFunc) apply(c *replayConfig) { f(c) }

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

// ReplayProgress is reported after every letter of a run.
type ReplayProgress struct {
	Processed int // letters handled so far
	Replayed  int // published (or, in a dry run, would be)
	Held      int // left dead with a reason
	Failed    int // publish failed
	Elapsed   time.Duration
}

type replayConfig struct {
	topics     map[string]bool // nil: the default pairing (see WithReplayTopics)
	badTopic   error           // an invalid WithReplayTopics entry
	rate       float64
	maxReplays int
	validator  Validator
	owner      string
	lease      time.Duration
	batch      int
	now        func() time.Time
	newUUID    func() string
	progress   func(ReplayProgress)
	startSpan  func(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span)
	logger     watermill.LoggerAdapter
	mp         metric.MeterProvider
}

// WithReplayTopics sets the topics replays may publish to: a letter whose
// original topic (KeyOriginalTopic, which whoever published the letter
// chose) is not one of them stays dead with reason ErrTopicNotAllowed, in
// dry runs too. The last call wins.
//
// Default (no call, or no topics): a letter may go back only to the topic
// its DLQ topic is named after, T for a letter the Monitor recorded from
// "T.dlq" (the dlq Retrier's default naming), so a letter published straight
// onto a DLQ topic cannot send its replay to another topic. Letters of a
// DLQ topic shared by several topics (dlq.topic, WithTopicFunc) are held
// until their topics are listed. An empty or blank topic, or one longer
// than 256 bytes (a stored original topic is cut there), is invalid.
func WithReplayTopics(topics ...string) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) {
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
	})
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

// WithReplayRate sets the velocity limit in messages per second, enforced
// with a token bucket of burst 1 (the ratelimit package). Default 50/s;
// zero means unlimited; negative, NaN or infinite is invalid.
func WithReplayRate(perSecond float64) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.rate = perSecond })
}

// WithMaxReplays sets how often one message may be replayed: a letter whose
// replay count (KeyReplayCount) is already n stays dead with reason
// ErrMaxReplays. Default 3; it must be at least 1.
func WithMaxReplays(n int) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.maxReplays = n })
}

// WithReplayValidator sets the re-validation run on each payload before its
// replay. Default none; nil means none.
func WithReplayValidator(v Validator) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.validator = v })
}

// WithReplayOwner names this replayer in claims. Default
// "<hostname>-<pid>-<random>"; empty means the default.
func WithReplayOwner(owner string) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.owner = owner })
}

// WithReplayLease sets how long a claim holds. A replayer that crashes
// leaves its claimed letters to be claimed again after it; keep it above
// the time a batch takes at the velocity limit. Default 5m; it must be
// positive.
func WithReplayLease(d time.Duration) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.lease = d })
}

// WithReplayBatch sets how many letters one claim takes. Default 100; it
// must be positive.
func WithReplayBatch(n int) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.batch = n })
}

// WithReplayClock sets the clock for claims and KeyReplayedAt. Default
// time.Now; nil means the default.
func WithReplayClock(now func() time.Time) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.now = now })
}

// WithReplayUUID sets the generator of replayed message UUIDs. Default
// watermill.NewUUID; nil means the default.
func WithReplayUUID(f func() string) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.newUUID = f })
}

// WithReplayProgress sets a callback run after each letter of a run (on the
// replaying goroutine; keep it short). Default none; nil means none.
func WithReplayProgress(f func(ReplayProgress)) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.progress = f })
}

// WithReplaySpan sets a hook that starts the span of each replay publish;
// the replayer ends it after the publish (recording a publish error). The
// hook gets the message with the dead letter's traceparent still in place,
// so tracing.Tracer.StartReplay fits: it moves the traceparent to
// levee.KeyOriginalTraceparent, starts a new root span linked to the original
// trace, and injects it. Default none: the replayer moves the traceparent
// itself and publishes without a span; nil means none.
func WithReplaySpan(f func(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span)) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.startSpan = f })
}

// WithReplayLogger sets the logger. Default none; nil means none.
func WithReplayLogger(l watermill.LoggerAdapter) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.logger = l })
}

// WithReplayMeterProvider sets the meter provider of the replay counter
// (docs/TELEMETRY.md, ## dlq operations). Default none; nil means none.
func WithReplayMeterProvider(mp metric.MeterProvider) ReplayOption {
	return replayOptionFunc(func(c *replayConfig) { c.mp = mp })
}

func newReplayConfig(opts []ReplayOption) replayConfig {
	c := replayConfig{
		rate:       DefaultReplayRate,
		maxReplays: DefaultMaxReplays,
		lease:      DefaultReplayLease,
		batch:      DefaultReplayBatch,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.newUUID == nil {
		c.newUUID = watermill.NewUUID
	}
	if c.logger == nil {
		c.logger = watermill.NopLogger{}
	}
	if c.owner == "" {
		host, _ := os.Hostname()
		c.owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + watermill.NewShortUUID()
	}
	return c
}

func (c *replayConfig) validate() error {
	switch {
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
