package testkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Counts is a snapshot of what the harness saw.
type Counts struct {
	Calls        int // handler-chain invocations (every delivery, redeliveries included)
	Acked        int // distinct messages whose final result was success
	Nacked       int // failed results (each one a redelivery on GoChannel)
	DeadLettered int // messages seen on the watched dead-letter topics
}

// String formats the counts for test failure messages.
func (c Counts) String() string {
	return fmt.Sprintf("calls=%d acked=%d nacked=%d dead-lettered=%d", c.Calls, c.Acked, c.Nacked, c.DeadLettered)
}

// Harness runs a Watermill router over an in-process GoChannel pub/sub and
// counts outcomes. Create it with New, add handlers, Start it, publish, and
// Wait. Close (registered with t.Cleanup) stops the router and pub/sub.
type Harness struct {
	tb     testing.TB
	PubSub *gochannel.GoChannel
	Router *message.Router

	mu       sync.Mutex // guards the fields below
	counts   Counts
	acked    map[string]bool
	dead     []*message.Message
	changed  chan struct{}
	started  bool
	closeErr error
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns a harness with an empty router. The router-level counting
// middleware is outermost, so it sees the final result of every delivery.
func New(tb testing.TB) *Harness {
	tb.Helper()
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		tb.Fatalf("testkit: new router: %v", err)
	}
	h := &Harness{tb: tb, PubSub: ps, Router: r, acked: map[string]bool{}, changed: make(chan struct{})}
	r.AddMiddleware(h.count)
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func (h *Harness) count(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if strings.HasPrefix(message.HandlerNameFromCtx(msg.Context()), dlqWatcherPrefix) {
			return next(msg)
		}
		out, err := next(msg)
		h.mu.Lock()
		h.counts.Calls++
		if err != nil {
			h.counts.Nacked++
		} else if !h.acked[msg.UUID] {
			h.acked[msg.UUID] = true
			h.counts.Acked++
		}
		h.notifyLocked()
		h.mu.Unlock()
		return out, err
	}
}

func (h *Harness) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Handle adds a handler that consumes topic and publishes nothing, wrapped
// in mws (first outermost).
func (h *Harness) Handle(name, topic string, fn message.NoPublishHandlerFunc, mws ...message.HandlerMiddleware) *message.Handler {
	hd := h.Router.AddConsumerHandler(name, topic, h.PubSub, fn)
	hd.AddMiddleware(mws...)
	return hd
}

// dlqWatcherPrefix names the harness's own dead-letter watchers, which the
// counting middleware skips.
const dlqWatcherPrefix = "testkit-dlq-"

// WatchDeadLetters counts every message published on topic as dead-lettered
// and keeps it for DeadLetters.
func (h *Harness) WatchDeadLetters(topic string) {
	h.Router.AddConsumerHandler(dlqWatcherPrefix+topic, topic, h.PubSub, func(msg *message.Message) error {
		h.mu.Lock()
		h.counts.DeadLettered++
		h.dead = append(h.dead, msg)
		h.notifyLocked()
		h.mu.Unlock()
		return nil
	})
}

// Start runs the router and waits until it is running.
func (h *Harness) Start() {
	h.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.Router.Run(ctx); err != nil {
			h.mu.Lock()
			h.closeErr = err
			h.mu.Unlock()
		}
	}()
	<-h.Router.Running()
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
}

// Publish publishes msgs on topic and fails the test on error.
func (h *Harness) Publish(topic string, msgs ...*message.Message) {
	h.tb.Helper()
	if err := h.PubSub.Publish(topic, msgs...); err != nil {
		h.tb.Fatalf("testkit: publish to %s: %v", topic, err)
	}
}

// PublishN publishes n messages on topic, built by mk (nil for payload
// "i"), and returns them.
func (h *Harness) PublishN(topic string, n int, mk func(i int) *message.Message) []*message.Message {
	h.tb.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		if mk != nil {
			msgs[i] = mk(i)
		} else {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		}
	}
	h.Publish(topic, msgs...)
	return msgs
}

// Counts returns a snapshot of the counts.
func (h *Harness) Counts() Counts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts
}

// DeadLetters returns the dead letters seen so far.
func (h *Harness) DeadLetters() []*message.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*message.Message(nil), h.dead...)
}

// WaitSettled waits until n distinct messages were acked or dead-lettered,
// and returns the counts. It fails the test after timeout (wall time, or
// fake time inside a synctest bubble).
func (h *Harness) WaitSettled(n int, timeout time.Duration) Counts {
	h.tb.Helper()
	return h.WaitFor(func(c Counts) bool { return c.Acked+c.DeadLettered >= n }, timeout)
}

// WaitFor waits until cond holds for the counts, and returns them.
func (h *Harness) WaitFor(cond func(Counts) bool, timeout time.Duration) Counts {
	h.tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		c, ch := h.counts, h.changed
		h.mu.Unlock()
		if cond(c) {
			return c
		}
		select {
		case <-ch:
		case <-deadline.C:
			h.tb.Fatalf("testkit: not settled after %s: %s", timeout, c)
			return c
		}
	}
}

// Close stops the router and the pub/sub; it is idempotent.
func (h *Harness) Close() error {
	h.mu.Lock()
	started := h.started
	h.started = false
	h.mu.Unlock()
	var err error
	if started {
		h.cancel()
		<-h.done
		h.mu.Lock()
		runErr := h.closeErr
		h.mu.Unlock()
		err = errors.Join(runErr, h.Router.Close())
	}
	// A router that never ran is not closed: Watermill's Close would wait
	// for handlers that never started.
	if cerr := h.PubSub.Close(); err == nil {
		err = cerr
	}
	return err
}
