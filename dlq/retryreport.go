package dlq

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/internal/trunc"
)

// reportRetry tells the span, the logger and the OnRetry hook about a
// retry in place.
func (w *wrapped) reportRetry(msg *message.Message, n *names, attempt int, delay time.Duration, err error) {
	cfg := &w.r.cfg
	if trace.SpanFromContext(msg.Context()).IsRecording() {
		telemetry.AddRetryEvent(msg.Context(), attempt, delay, string(ClassTransient), trunc.String(err.Error(), cfg.maxErrorLength))
	}
	cfg.logger.Debug("levee dlq: retrying", watermill.LogFields{
		"uuid": trunc.Log(msg.UUID), "handler": n.handler, "attempt": attempt, "delay": delay, "err": trunc.LogError(err)})
	if cfg.onRetry != nil {
		cfg.onRetry(RetryInfo{Handler: n.handler, Topic: n.topic, MessageUUID: msg.UUID,
			Attempt: attempt, Delay: delay, Err: err})
	}
}

// reportDeferral tells the span about a deferral waited in process for
// after.
func (w *wrapped) reportDeferral(msg *message.Message, after time.Duration, err error) {
	if trace.SpanFromContext(msg.Context()).IsRecording() {
		telemetry.AddDeferralEvent(msg.Context(), after, trunc.String(err.Error(), w.r.cfg.maxErrorLength))
	}
}

// sleep waits d or until the message context ends.
func sleep(msg *message.Message, d time.Duration) error {
	ctx := msg.Context()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
