package dedup

import (
	"context"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/telemetry"
)

// Instrument names (docs/TELEMETRY.md and docs/DEDUP.md), following
// telemetry.Name: levee.<component>.<name>. Each is a counter of messages
// with the attributes handler and topic.
const (
	metricDuplicates    = "levee.dedup.duplicates"
	metricWaited        = "levee.dedup.claims.waited"
	metricLeaseExpiries = "levee.dedup.lease.expiries"
	metricStoreErrors   = "levee.dedup.store.errors"
	numCounters         = 4
	cDuplicates         = 0
	cWaited             = 1
	cLeaseExpiries      = 2
	cStoreErrors        = 3
)

// instruments are one Dedup's counters; nil when telemetry is off.
type instruments struct {
	c [numCounters]metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	if mp == nil {
		return nil, nil
	}
	m := telemetry.Meter(mp)
	// name, unit, description: the store errors count failed calls (a
	// message may make several), the others messages.
	defs := [numCounters][3]string{
		{metricDuplicates, telemetry.UnitMessages, "Duplicates acked without running the handler."},
		{metricWaited, telemetry.UnitMessages, "Messages deferred because another delivery held their identity's claim."},
		{metricLeaseExpiries, telemetry.UnitMessages, "Claims taken over after the previous claim's lease expired (a crash, or a handler outliving the lease)."},
		{metricStoreErrors, "{error}", "Store calls that failed (claim: the message was deferred; done or release: logged)."},
	}
	ins := &instruments{}
	for i, def := range defs {
		c, err := m.Int64Counter(def[0], metric.WithUnit(def[1]), metric.WithDescription(def[2]))
		if err != nil {
			return nil, err
		}
		ins.c[i] = c
	}
	return ins, nil
}

// handlerAttrs are one Middleware wrapper's attributes, resolved from the
// first message's context.
type handlerAttrs struct{ opts []metric.AddOption }

func (ins *instruments) count(ctx context.Context, p *atomic.Pointer[handlerAttrs], msg *message.Message, which int) {
	if ins == nil {
		return
	}
	a := p.Load()
	if a == nil {
		mctx := msg.Context()
		a = &handlerAttrs{opts: telemetry.AddOpts(telemetry.Attrs(message.HandlerNameFromCtx(mctx), message.SubscribeTopicFromCtx(mctx)))}
		p.Store(a)
	}
	ins.c[which].Add(ctx, 1, a.opts...)
}
