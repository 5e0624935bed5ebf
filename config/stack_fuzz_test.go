package config_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/tracing"
)

// hostileYAML is the file FuzzHostileMetadata builds its stacks from:
// every per-message concern on, tracing included. Handler "uuid" keys
// dedup and rate limits by the message; handler "keyed" takes both keys
// from metadata a producer sets.
const hostileYAML = `
schedulers:
  s: {slots: 1, max_waiting: 4}
handlers:
  uuid:
    tracing: {}
    recover: true
    dlq: {topic: t.dlq, retry: {max_attempts: 3, initial: 10ms, max: 100ms}}
    dedup: {}
    breaker: {consecutive_failures: 2, open_for: 1s}
    priority: {scheduler: s}
    ratelimit: {rate: 5/s, burst: 1, mode: reject}
    timeout: 1s
  keyed:
    tracing: {propagators: [tracecontext, baggage]}
    recover: true
    dlq: {topic: t.dlq, retry: {max_attempts: 3, initial: 10ms, max: 100ms}}
    dedup: {key: {metadata: order_id}}
    breaker: {failure_ratio: 50%, min_requests: 2, open_for: 1s}
    priority: {scheduler: s, default_priority: 3}
    ratelimit: {rate: 5/s, key: {metadata: tenant}, per_key: {rate: 1/s, max_keys: 2}}
    timeout: 1s
  pointer:
    tracing: {}
    metrics: true
    recover: true
    dlq: {topic: t.dlq, retry: {max_attempts: 2}}
    dedup: {key: {json_pointer: /order/id}}
    ratelimit: {rate: 100/s, key: {metadata: tenant}, per_key: {rate: 10/s, max_keys: 1}}
    timeout: 1s
`

// hostileKeys are the metadata keys Levee reads or writes on a consumed
// message: the control keys, priority, the replayer's and the dead
// letter's keys, dedup's, trace context and baggage, and the keys the
// file's dedup and rate limit read.
var hostileKeys = []string{
	levee.KeyDeliveryCount, levee.KeyRetryAfter, levee.KeyRedeliverAt, levee.KeyUndecodable,
	levee.KeyPriority, levee.KeyOriginalTraceparent, levee.KeyOriginalTracestate, levee.KeyDedupID,
	dlq.KeyReplayCount, dlq.KeyOriginalTopic, dlq.KeyHandler, dlq.KeyConsumerGroup, dlq.KeyError,
	dlq.KeyErrorType, dlq.KeyErrorClass, dlq.KeyFingerprint, dlq.KeyAttempts, dlq.KeyFirstFailureAt,
	dlq.KeyLastFailureAt, dlq.KeyOriginalUUID, dlq.KeyDLQTopic, dlq.KeyValidationErrors, dlq.KeyStack,
	dlq.KeyCodeLocation, dlq.KeyCompacted, dlq.KeyReplayOf, dlq.KeyReplayedAt,
	tracing.KeyTraceparent, tracing.KeyTracestate, tracing.KeyBaggage, "order_id", "tenant", "levee_partition_key",
}

// hostileMetadataValues: huge, empty, non-UTF-8, NUL, out of range,
// negative, NaN-like, duplicate separators, and well-formed ones.
var hostileMetadataValues = []string{
	"", " ", "\x00", "\xff\xfe\xfd", "a\x00b", "\u202e", "0", "-1", "1", "3", "9223372036854775807",
	"9223372036854775808", "-9223372036854775808", "1073741825", "NaN", "-NaN", "Inf", "+Inf", "1e309",
	"0x10", "1.5", "1h", "-1h", "876000h", "2026-01-02T03:04:05Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
	"permanent", "panic", "exhausted", "transient", "validation", "0123456789abcdef",
	"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-00000000000000000000000000000000-0000000000000000-00",
	"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
	"00--b7ad6b7169203331-01", "---", "a=b,,c=d", "k=v;;p", "=,=,=", ",,,,", ";;;;", "k==v", "%zz",
	`["/a"]`, `{`, strings.Repeat("9", 4096), strings.Repeat("a=b,", 1024), strings.Repeat("\xff", 1<<16),
}

// Fates of the message in FuzzHostileMetadata: what its handler does.
const (
	hostileSucceed = iota
	hostileFailTwice
	hostileFail
	hostilePermanent
	hostilePanic
	hostileSlow // waits past the timeout unless its context ends
	hostileFates
)

// FuzzHostileMetadata delivers one message whose metadata holds hostile
// values for every key Levee reads through the stacks the file above
// builds (tracing, recover, dlq, dedup, breaker, priority, ratelimit,
// timeout), with a handler that succeeds, fails, panics or overruns, and
// delivers it again after each Nack as a transport would, with its
// ingress (control keys stripped, its own delivery count) or without.
// Expected: no panic escapes; every delivery gets exactly one verdict (an
// ack after the handler succeeded, an ack with exactly one dead letter, or
// a Nack with neither); the message ends acked within a bounded number of
// deliveries (never lost); and each dead letter carries valid metadata: a
// reason, a class, attempts, failure times, the fingerprint and the dead
// letter topic, Levee's keys in UTF-8.
func FuzzHostileMetadata(f *testing.F) {
	f.Add(byte(hostileSucceed), byte(0), []byte{}, "")
	for i := range hostileKeys {
		f.Add(byte(i%hostileFates), byte(i*5), []byte{byte(i), byte(i * 7)}, "")
	}
	for j := range hostileMetadataValues {
		f.Add(byte(j%hostileFates), byte(j/hostileFates), []byte{byte(j), byte(j), byte(j * 3), byte(j)}, "x")
	}
	f.Add(byte(hostilePanic), byte(1), []byte{0, 0x80, 4, 0x80}, "5\n\xff")
	cfg, err := config.Parse("levee.yaml", []byte(hostileYAML), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, fate, model byte, picks []byte, raw string) {
		md := hostileMetadata(picks, raw)
		payload := []byte(`{"order":{"id":1}}`)
		if model&8 != 0 {
			payload = []byte(raw)
		}
		synctest.Test(t, func(t *testing.T) { runHostile(t, cfg, int(fate)%hostileFates, int(model), md, payload) })
	})
}

// hostileMetadata sets, per pair of picks, one key to one value (with
// the value byte's high bit set: a line of raw).
func hostileMetadata(picks []byte, raw string) message.Metadata {
	lines := strings.Split(raw, "\n")
	md := message.Metadata{}
	for i := 0; i+1 < len(picks) && i < 64; i += 2 {
		v := hostileMetadataValues[int(picks[i+1])%len(hostileMetadataValues)]
		if picks[i+1]&0x80 != 0 {
			v = lines[int(picks[i+1]&0x7f)%len(lines)]
		}
		md[hostileKeys[int(picks[i])%len(hostileKeys)]] = v
	}
	return md
}

// maxHostileDeliveries bounds the deliveries of one message: far more
// than three attempts, the breaker's and rate limit's rejections and the
// deferrals need.
const maxHostileDeliveries = 200

// runHostile is one FuzzHostileMetadata execution.
func runHostile(t *testing.T, cfg *config.Config, fate, model int, md message.Metadata, payload []byte) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	pub := &letters{}
	a, err := config.Build(cfg, config.Deps{Publisher: pub, TracerProvider: tp, MeterProvider: mp,
		Logger: watermill.NopLogger{}, System: "fuzz"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	name := []string{"uuid", "keyed", "pointer"}[(model>>4)%3]
	ingress, counted := model&2 == 0, model&4 != 0
	succeeded := 0
	h := a.Stack(name).Middleware(hostileHandler(fate, &succeeded))
	for delivery := 1; delivery <= maxHostileDeliveries; delivery++ {
		msg := message.NewMessage("m-1", payload)
		for k, v := range md {
			msg.Metadata[k] = v
		}
		if ingress {
			levee.StripControl(msg.Metadata)
		}
		if counted {
			msg.Metadata.Set(levee.KeyDeliveryCount, strconv.Itoa(delivery))
		}
		dead, done := len(pub.msgs), succeeded
		err := deliver(h, msg)
		newDead, ok := len(pub.msgs)-dead, succeeded > done
		switch {
		case err == nil && ok && newDead == 0, err == nil && !ok && newDead == 1:
		case err != nil && !ok && newDead == 0:
			var ra interface{ RetryAfter() time.Duration }
			wait := time.Second
			if errors.As(err, &ra) {
				wait = min(max(ra.RetryAfter(), time.Millisecond), levee.MaxRetryAfter)
			}
			time.Sleep(wait)
			continue
		default:
			t.Fatalf("delivery %d of %s (fate %d, metadata %q): returned %v after %d successes and %d dead letters; want one verdict",
				delivery, name, fate, md, err, succeeded-done, newDead)
		}
		collect(t, reader)
		if newDead == 1 {
			checkDeadLetter(t, pub.msgs[len(pub.msgs)-1], msg, md)
		}
		if (fate == hostileSucceed || fate == hostileFailTwice) && ok {
			return
		}
		if newDead == 1 {
			return
		}
		t.Fatalf("delivery %d of %s (fate %d): acked without a dead letter, yet the handler only fails", delivery, name, fate)
	}
	t.Fatalf("%s (fate %d, metadata %q): not settled after %d deliveries", name, fate, md, maxHostileDeliveries)
}

// collect reads every metric the stack recorded, as an exporter would.
func collect(t *testing.T, r *sdkmetric.ManualReader) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
}

// deliver runs h on msg with a context of its own, as a router does, and
// fails the run if a panic escapes.
func deliver(h message.HandlerFunc, msg *message.Message) (err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg.SetContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errEscaped, p)
		}
	}()
	_, err = h(msg)
	if errors.Is(err, errEscaped) {
		return fmt.Errorf("handler error wraps the escape marker: %w", err)
	}
	return err
}

var errEscaped = errors.New("a panic escaped the stack")

// hostileHandler is the handler of fate; it counts its successes.
func hostileHandler(fate int, succeeded *int) message.HandlerFunc {
	calls := 0
	return func(msg *message.Message) ([]*message.Message, error) {
		calls++
		switch {
		case fate == hostileFailTwice && calls <= 2, fate == hostileFail:
			return nil, errors.New("flaky")
		case fate == hostilePermanent:
			return nil, dlq.Permanent(fmt.Errorf("bad order %q", msg.Metadata.Get("order_id")))
		case fate == hostilePanic:
			panic("boom " + msg.Metadata.Get(levee.KeyPriority))
		case fate == hostileSlow:
			select {
			case <-msg.Context().Done():
				return nil, msg.Context().Err()
			case <-time.After(2 * time.Second):
			}
		}
		*succeeded++
		return nil, nil
	}
}

// checkDeadLetter fails unless dl, the dead letter of msg (which arrived
// with metadata md), carries valid metadata.
func checkDeadLetter(t *testing.T, dl, msg *message.Message, md message.Metadata) {
	t.Helper()
	d := dlq.ParseDeadLetter(dl)
	var problems []string
	if strings.TrimSpace(d.Error) == "" {
		problems = append(problems, "no reason (levee_error)")
	}
	switch d.Class {
	case dlq.ClassPermanent, dlq.ClassValidation, dlq.ClassPanic, dlq.ClassExhausted:
	default:
		problems = append(problems, fmt.Sprintf("class %q", dl.Metadata.Get(dlq.KeyErrorClass)))
	}
	if d.Attempts < 1 {
		problems = append(problems, fmt.Sprintf("attempts %q", dl.Metadata.Get(dlq.KeyAttempts)))
	}
	if d.FirstFailureAt.IsZero() || d.LastFailureAt.Before(d.FirstFailureAt) {
		problems = append(problems, fmt.Sprintf("failure times %q..%q", dl.Metadata.Get(dlq.KeyFirstFailureAt), dl.Metadata.Get(dlq.KeyLastFailureAt)))
	}
	if d.Fingerprint == dlq.UnknownFingerprint {
		problems = append(problems, fmt.Sprintf("fingerprint %q", dl.Metadata.Get(dlq.KeyFingerprint)))
	}
	if d.DLQTopic != "t.dlq" {
		problems = append(problems, fmt.Sprintf("dlq topic %q", d.DLQTopic))
	}
	if got := dl.Metadata.Get(dlq.KeyReplayCount); got != strconv.Itoa(d.ReplayCount) {
		problems = append(problems, fmt.Sprintf("replay count %q", got))
	}
	if _, carried := md[dlq.KeyOriginalUUID]; !carried && d.OriginalUUID != msg.UUID {
		problems = append(problems, fmt.Sprintf("original uuid %q, want %q", d.OriginalUUID, msg.UUID))
	}
	for _, k := range dlq.FailureKeys() {
		if v, ok := dl.Metadata[k]; ok && !utf8.ValidString(v) {
			problems = append(problems, fmt.Sprintf("%s not UTF-8: %q", k, v))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("dead letter of %q: %s\nmetadata: %q", md, strings.Join(problems, "; "), dl.Metadata)
	}
}
