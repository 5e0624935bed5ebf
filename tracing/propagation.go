package tracing

import (
	"context"
	"encoding/hex"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
)

// Metadata keys. The W3C keys are written by the default propagator; the
// levee_ key is Levee's own.
const (
	// KeyTraceparent is the W3C trace context key in message metadata.
	KeyTraceparent = "traceparent"
	// KeyTracestate is the W3C trace state key in message metadata.
	KeyTracestate = "tracestate"
	// KeyBaggage is the W3C baggage key in message metadata.
	KeyBaggage = "baggage"
)

// MaxTraceparentLen bounds the traceparent value that is parsed. A W3C
// version 00 traceparent is 55 bytes; future versions may append fields. A
// longer value is treated as invalid (a new root span, counted) without
// being parsed.
const MaxTraceparentLen = telemetry.MaxTraceparentLen

// Reasons an incoming trace context is rejected, as recorded in the
// levee.tracing.invalid_reason event attribute.
const (
	invalidMalformed = "malformed"
	invalidOversized = "oversized"
)

// MaxTracestateLen bounds the tracestate value that is parsed. The W3C
// limits (32 members, keys and values of at most 256 bytes) keep a valid
// tracestate under it; a longer one is dropped (the trace continues without
// it) instead of being parsed.
const MaxTracestateLen = telemetry.MaxTracestateLen

// maxBaggageMembers bounds the list members of a baggage value that are
// parsed: members past the 128th are not read. The OTel baggage parser
// keeps at most 64 members of a value of at most 8192 bytes, but builds an
// error for every invalid member it skips, so 8 KiB of empty members
// ("=,=,…", 4,000 of them) cost it 8,020 allocations (192 KB) and about a
// millisecond per delivery, twice that with a rejected traceparent. A
// valid baggage it keeps whole has at most 64 members, so the bound drops
// nothing it would have kept unless more than 64 of the first 128 members
// are invalid. A value over the parser's 8192 bytes is left whole: the
// parser drops it unread.
const (
	maxBaggageMembers = 128
	maxBaggageBytes   = 8192
)

// boundBaggage returns bag cut before its (maxBaggageMembers+1)-th list
// member, and whether it was cut (never when it is longer than
// maxBaggageBytes). It does not allocate.
func boundBaggage(bag string) (string, bool) {
	if len(bag) > maxBaggageBytes {
		return bag, false
	}
	for i, n := 0, 0; i < len(bag); i++ {
		if bag[i] == ',' {
			if n++; n == maxBaggageMembers {
				return bag[:i], true
			}
		}
	}
	return bag, false
}

// hiddenCarrier is a carrier over message metadata that hides some trace
// context keys: an oversized or rejected traceparent, an oversized
// tracestate. Baggage is still read, cut to its first maxBaggageMembers
// members when cutBaggage is set.
type hiddenCarrier struct {
	md         message.Metadata
	hideParent bool
	hideState  bool
	cutBaggage bool
	baggage    string // the cut baggage, when cutBaggage
}

func (c hiddenCarrier) Get(key string) string {
	if (c.hideParent && (key == KeyTraceparent || key == KeyTracestate)) || (c.hideState && key == KeyTracestate) {
		return ""
	}
	if c.cutBaggage && key == KeyBaggage {
		return c.baggage
	}
	return c.md[key]
}

func (c hiddenCarrier) Set(key, value string) {
	if c.md != nil {
		c.md[key] = value
	}
}

func (c hiddenCarrier) Keys() []string { return propagation.MapCarrier(c.md).Keys() }

// traceparentOnly is a carrier that shows only md's traceparent. It is one
// pointer wide, so passing it as an interface does not allocate.
type traceparentOnly struct{ md message.Metadata }

func (c traceparentOnly) Get(key string) string {
	if key == KeyTraceparent {
		return c.md[key]
	}
	return ""
}

func (traceparentOnly) Set(string, string) {}

func (traceparentOnly) Keys() []string { return []string{KeyTraceparent} }

// extract returns ctx with the span context and baggage found in md, and the
// reason the traceparent in md was rejected ("" when md has none or it is
// valid). With check false (p does not read traceparent) it only extracts.
// It never panics, whatever md holds; a nil md is fine.
func extract(ctx context.Context, p propagation.TextMapPropagator, md message.Metadata, check bool) (context.Context, string) {
	raw := md[KeyTraceparent]
	check = check && raw != ""
	var reason string
	if check && len(raw) > MaxTraceparentLen {
		reason = invalidOversized
	}
	hideState := len(md[KeyTracestate]) > MaxTracestateLen
	bag, cutBag := boundBaggage(md[KeyBaggage])
	if reason == "" && !hideState && !cutBag {
		out := p.Extract(ctx, propagation.MapCarrier(md))
		// When what p found is exactly the version 00 traceparent in md
		// (and ctx had no span context of its own), that traceparent is
		// valid: one extraction, no separate validation.
		if !check || (!trace.SpanContextFromContext(ctx).IsValid() && isTraceparent(trace.SpanContextFromContext(out), raw)) {
			return out, ""
		}
		if validTraceparent(md) {
			return out, ""
		}
		reason = invalidMalformed
	} else if check && reason == "" && !validTraceparent(md) {
		reason = invalidMalformed
	}
	// Hide a rejected traceparent from p too, so that no propagator
	// continues a trace from it; baggage is still read.
	return p.Extract(ctx, hiddenCarrier{md: md, hideParent: reason != "", hideState: hideState, cutBaggage: cutBag, baggage: bag}), reason
}

// isTraceparent reports whether raw is the version 00 W3C traceparent of
// sc, byte for byte (lowercase hex, as the W3C requires). It does not
// allocate.
func isTraceparent(sc trace.SpanContext, raw string) bool {
	const n = 55 // 00-<32 hex>-<16 hex>-<2 hex>
	if len(raw) != n || raw[:3] != "00-" || raw[35] != '-' || raw[52] != '-' || !sc.IsValid() {
		return false
	}
	tid, sid, flags := sc.TraceID(), sc.SpanID(), [1]byte{byte(sc.TraceFlags())}
	var buf [32]byte
	hex.Encode(buf[:], tid[:])
	if string(buf[:]) != raw[3:35] {
		return false
	}
	hex.Encode(buf[:16], sid[:])
	if string(buf[:16]) != raw[36:52] {
		return false
	}
	hex.Encode(buf[:2], flags[:])
	return string(buf[:2]) == raw[53:]
}

// validTraceparent reports whether md's traceparent parses as a valid W3C
// trace context (tracestate is not looked at).
func validTraceparent(md message.Metadata) bool {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), traceparentOnly{md}))
	return sc.IsValid()
}

// inject writes the span context and baggage of ctx into msg's metadata,
// creating the metadata when it is nil. With tp (p writes traceparent) and
// a valid span context in ctx, a tracestate already in the metadata is
// removed first: it belongs to the traceparent being replaced (metadata
// copied from a delivery whose traceparent was rejected, or from another
// trace), and TraceContext writes none for a span without trace state.
func inject(ctx context.Context, p propagation.TextMapPropagator, tp bool, msg *message.Message) {
	if msg.Metadata == nil {
		msg.Metadata = make(message.Metadata)
	}
	if tp && trace.SpanContextFromContext(ctx).IsValid() {
		delete(msg.Metadata, KeyTracestate)
	}
	p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
}

// Extract returns ctx with the trace context and baggage carried by md,
// read with the default propagator (W3C TraceContext and Baggage). A
// missing, malformed or oversized traceparent leaves ctx's span context
// unchanged. It never panics; md may be nil.
func Extract(ctx context.Context, md message.Metadata) context.Context {
	out, _ := extract(ctx, DefaultPropagator(), md, true)
	return out
}

// Inject writes the span context and baggage of ctx into msg's metadata
// with the default propagator (W3C TraceContext and Baggage), creating the
// metadata when it is nil. It writes nothing when ctx has no valid span
// context and no baggage. With a valid span context it replaces the
// metadata's traceparent and tracestate as a pair: a tracestate left there
// from another trace is removed.
func Inject(ctx context.Context, msg *message.Message) {
	inject(ctx, DefaultPropagator(), true, msg)
}

// LinkFromMetadata returns a link to the span context in md's W3C
// traceparent (and tracestate), and whether there was a valid one. A
// replayed message's new trace links to its original trace this way.
func LinkFromMetadata(md message.Metadata) (trace.Link, bool) {
	return telemetry.LinkFromMetadata(md)
}

// originalLink returns a link to the span context in md's
// levee.KeyOriginalTraceparent (with the trace state in
// levee.KeyOriginalTracestate), and whether there was a valid one.
func originalLink(md message.Metadata) (trace.Link, bool) {
	raw := md[levee.KeyOriginalTraceparent]
	if raw == "" {
		return trace.Link{}, false
	}
	link, ok := LinkFromMetadata(message.Metadata{KeyTraceparent: raw, KeyTracestate: md[levee.KeyOriginalTracestate]})
	if ok {
		link.Attributes = []attribute.KeyValue{attrLinkReplayOf}
	}
	return link, ok
}

// Links returns one link per message to the span context its context
// carries (the consumer span, inside the middleware), or else to the one in
// its metadata. Messages with neither are skipped. A batch span links every
// member this way.
func Links(msgs []*message.Message) []trace.Link {
	links := make([]trace.Link, 0, len(msgs))
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if sc := trace.SpanContextFromContext(m.Context()); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
			continue
		}
		if l, ok := LinkFromMetadata(m.Metadata); ok {
			links = append(links, l)
		}
	}
	return links
}

// baggageOr returns ctx with b as its baggage when ctx has none.
func baggageOr(ctx context.Context, b baggage.Baggage) context.Context {
	if b.Len() == 0 || baggage.FromContext(ctx).Len() > 0 {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, b)
}
