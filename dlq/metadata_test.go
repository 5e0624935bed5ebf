package dlq_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

func TestParseCount(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"0", 0, true}, {"7", 7, true}, {" 12 ", 12, true}, {"1073741824", 1 << 30, true},
		{"1073741825", 0, false}, {"99999999999999999999999", 0, false}, {"-1", 0, false},
		{"+3", 0, false}, {"3.5", 0, false}, {"1e3", 0, false}, {"", 0, false}, {"abc", 0, false},
		{"0x10", 0, false}, {"٣", 0, false},
	}
	for _, tt := range tests {
		got, ok := dlq.ParseCount(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseCount(%q): got %d,%v, want %d,%v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestMaskAndFingerprint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"order 12345 failed", "order <n> failed"},
		{"order-12345: amount 12.50", "order-<n>: amount <n>.<n>"},
		{"msg 3f2504e0-4f89-11d3-9a0c-0305e82c3301 bad", "msg <uuid> bad"},
		{"ptr 0xc000123abc", "ptr <hex>"},
		{"commit 9fceb02d0ae598e95dc970b74767f19372d61af8", "commit <hex>"},
		{"deadbeef is a word", "deadbeef is a word"},
		{"v2 api timeout", "v<n> api timeout"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := dlq.MaskVariable(tt.in); got != tt.want {
			t.Errorf("MaskVariable(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	a := dlq.Fingerprint("*errors.errorString", "payment 881 declined for 3f2504e0-4f89-11d3-9a0c-0305e82c3301")
	b := dlq.Fingerprint("*errors.errorString", "payment 9 declined for 00000000-0000-0000-0000-000000000001")
	c := dlq.Fingerprint("*main.DeclinedError", "payment 9 declined for 00000000-0000-0000-0000-000000000001")
	if a != b {
		t.Errorf("same failure, different ids: got %s and %s, want equal", a, b)
	}
	if a == c {
		t.Errorf("different error types: got equal fingerprints %s", a)
	}
	if len(a) != 16 {
		t.Errorf("fingerprint length: got %d, want 16", len(a))
	}
}

type myErr struct{ code int }

func (e *myErr) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("x"), "*errors.errorString"},
		{fmt.Errorf("a: %w", &myErr{1}), "*dlq_test.myErr"},
		{dlq.Permanent(fmt.Errorf("a: %w", &myErr{1})), "*dlq_test.myErr"},
		{fmt.Errorf("a: %w", dlq.Permanent(errors.New("x"))), "*errors.errorString"},
		{fmt.Errorf("plain %d", 1), "*errors.errorString"},
		{&levee.PanicError{Value: "x"}, "*levee.PanicError"},
		{errors.Join(errors.New("a"), errors.New("b")), "*errors.joinError"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := dlq.ErrorType(tt.err); got != tt.want {
			t.Errorf("ErrorType(%v): got %q, want %q", tt.err, got, tt.want)
		}
	}
}

func deadLetterOf(t *testing.T, msg *message.Message, herr error, opts ...dlq.Option) *message.Message {
	t.Helper()
	pub := newRecPublisher()
	r, err := dlq.New(pub, append([]dlq.Option{dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, herr })(msg); err != nil {
		t.Fatalf("got %v, want dead-lettered", err)
	}
	dead := pub.published(testDLQ)
	if len(dead) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(dead))
	}
	return dead[0]
}

// TestDeadLetterMetadata checks every key, the payload byte for byte, that
// original metadata (trace context included) is kept, and that the
// original message is not modified.
func TestDeadLetterMetadata(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		payload := []byte{0, 1, 2, 0xff, '{'}
		msg := message.NewMessage("orig-uuid", payload)
		msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		msg.Metadata.Set("tracestate", "vendor=x")
		msg.Metadata.Set("app_key", "v")
		herr := fmt.Errorf("charge order 42: %w", dlq.Permanent(&myErr{code: 402}))
		dl := deadLetterOf(t, msg, herr, dlq.WithConsumerGroup("billing"))
		md := dl.Metadata
		now := dlq.FormatTime(time.Now())
		want := map[string]string{
			"traceparent":         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"tracestate":          "vendor=x",
			"app_key":             "v",
			dlq.KeyOriginalTopic:  "",
			dlq.KeyHandler:        "",
			dlq.KeyConsumerGroup:  "billing",
			dlq.KeyError:          "charge order 42: code 402",
			dlq.KeyErrorType:      "*dlq_test.myErr",
			dlq.KeyErrorClass:     "permanent",
			dlq.KeyFingerprint:    dlq.Fingerprint("*dlq_test.myErr", "charge order 42: code 402"),
			dlq.KeyAttempts:       "1",
			dlq.KeyFirstFailureAt: now,
			dlq.KeyLastFailureAt:  now,
			dlq.KeyReplayCount:    "0",
			dlq.KeyOriginalUUID:   "orig-uuid",
			dlq.KeyDLQTopic:       testDLQ,
		}
		for k, v := range want {
			if got, ok := md[k]; !ok || got != v {
				t.Errorf("%s: got %q (present %v), want %q", k, got, ok, v)
			}
		}
		// The handler is this test's func literal, wrapped directly: its
		// location is the hint.
		if loc := md[dlq.KeyCodeLocation]; !strings.HasPrefix(loc, "github.com/levee-dev/levee/dlq_test.deadLetterOf.func1 (") {
			t.Errorf("%s: got %q, want deadLetterOf's handler", dlq.KeyCodeLocation, loc)
		}
		if len(md) != len(want)+1 {
			t.Errorf("metadata: got %d keys, want %d: %v", len(md), len(want)+1, md)
		}
		if string(dl.Payload) != string(payload) {
			t.Errorf("payload: got %v, want %v", []byte(dl.Payload), payload)
		}
		if dl.UUID != "orig-uuid" {
			t.Errorf("uuid: got %q, want the original", dl.UUID)
		}
		if len(msg.Metadata) != 3 {
			t.Errorf("original metadata modified: %v", msg.Metadata)
		}
	})
}

// TestReDeadLetterReplacesFailureKeys: a replayed dead letter that fails
// again carries only the new failure keys, keeps its lineage (original
// UUID, replay count) and drops stale optional keys.
func TestReDeadLetterReplacesFailureKeys(t *testing.T) {
	first := deadLetterOf(t, message.NewMessage("u-1", []byte("p")), &validationErr{paths: []string{"/to: bad"}},
		dlq.WithConsumerGroup("g1"))
	if first.Metadata[dlq.KeyValidationErrors] == "" {
		t.Fatalf("first dead letter has no %s", dlq.KeyValidationErrors)
	}
	// the replayer publishes a new message carrying the dead letter's metadata
	replayed := message.NewMessage("u-2", first.Payload)
	for k, v := range first.Metadata {
		replayed.Metadata[k] = v
	}
	replayed.Metadata[dlq.KeyReplayCount] = "1"
	second := deadLetterOf(t, replayed, dlq.Permanent(errors.New("other failure")))
	md := second.Metadata
	if _, ok := md[dlq.KeyValidationErrors]; ok {
		t.Errorf("stale %s kept", dlq.KeyValidationErrors)
	}
	if _, ok := md[dlq.KeyConsumerGroup]; ok {
		t.Errorf("stale %s kept", dlq.KeyConsumerGroup)
	}
	if md[dlq.KeyError] != "other failure" || md[dlq.KeyErrorClass] != "permanent" {
		t.Errorf("failure keys: got %q/%q", md[dlq.KeyError], md[dlq.KeyErrorClass])
	}
	if md[dlq.KeyOriginalUUID] != "u-1" || md[dlq.KeyReplayCount] != "1" {
		t.Errorf("lineage: got original %q replay %q, want u-1 and 1", md[dlq.KeyOriginalUUID], md[dlq.KeyReplayCount])
	}
	if len(md) != len(first.Metadata)-2 {
		t.Errorf("key count: got %d, want %d (no piling up)", len(md), len(first.Metadata)-2)
	}
}

type validationErr struct{ paths []string }

func (e *validationErr) Error() string              { return "invalid: " + strings.Join(e.paths, "; ") }
func (e *validationErr) ErrorClass() string         { return "validation" }
func (e *validationErr) ValidationErrors() []string { return e.paths }

func TestBoundedErrorAndValidationKeys(t *testing.T) {
	long := strings.Repeat("é", 5000)
	dl := deadLetterOf(t, message.NewMessage("", nil), dlq.Permanent(errors.New(long)), dlq.WithMaxErrorLength(101))
	got := dl.Metadata[dlq.KeyError]
	if len(got) > 101 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("levee_error: got %d bytes (valid %v), want <= 101 valid UTF-8 ending in …", len(got), utf8.ValidString(got))
	}
	if dl.UUID == "" || dl.Metadata[dlq.KeyOriginalUUID] != dl.UUID {
		t.Errorf("message without UUID: got dead letter uuid %q original %q", dl.UUID, dl.Metadata[dlq.KeyOriginalUUID])
	}
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("/items/%d: %s", i, strings.Repeat("x", 300))
	}
	dl = deadLetterOf(t, message.NewMessage("v", nil), &validationErr{paths: many})
	var list []string
	if err := json.Unmarshal([]byte(dl.Metadata[dlq.KeyValidationErrors]), &list); err != nil {
		t.Fatalf("levee_validation_errors is not a JSON array: %v", err)
	}
	if n := len(dl.Metadata[dlq.KeyValidationErrors]); n > dlq.DefaultMaxErrorLength {
		t.Errorf("levee_validation_errors: got %d bytes, want <= %d", n, dlq.DefaultMaxErrorLength)
	}
	if len(list) == 0 || list[len(list)-1] != "…" {
		t.Errorf("truncated list should end with …, got %d entries", len(list))
	}
}

// FuzzMetadataParsing feeds garbage into every Levee key a message may
// carry; the Retrier must never panic and must either ack after a confirmed
// dead letter or Nack.
func FuzzMetadataParsing(f *testing.F) {
	for _, s := range []string{"1", "-1", "0", "99999999999999999999", "abc", "", " 3 ", "1e9", "\xff", "2147483648"} {
		f.Add(s, s, s, "u")
	}
	f.Fuzz(func(t *testing.T, delivery, replay, original, uuid string) {
		_, _ = dlq.ParseCount(delivery)
		_, _ = dlq.ParseTime(delivery)
		_ = dlq.MaskVariable(delivery + replay)
		pub := newRecPublisher()
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMaxAttempts(2), dlq.WithJitter(func() float64 { return 0 }))
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(uuid, []byte(original))
		msg.Metadata.Set(dlq.KeyDeliveryCount, delivery)
		msg.Metadata.Set(dlq.KeyReplayCount, replay)
		msg.Metadata.Set(dlq.KeyOriginalUUID, original)
		msg.Metadata.Set(dlq.KeyAttempts, delivery)
		_, herr := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New(delivery) })(msg)
		if herr != nil {
			t.Fatalf("got %v, want dead-lettered", herr)
		}
		dead := pub.published(testDLQ)
		if len(dead) != 1 {
			t.Fatalf("dead letters: got %d, want 1", len(dead))
		}
		md := dead[0].Metadata
		if n, ok := dlq.ParseCount(md[dlq.KeyAttempts]); !ok || n < 1 {
			t.Errorf("levee_attempts: got %q", md[dlq.KeyAttempts])
		}
		if _, ok := dlq.ParseCount(md[dlq.KeyReplayCount]); !ok {
			t.Errorf("levee_replay_count: got %q", md[dlq.KeyReplayCount])
		}
		if md[dlq.KeyOriginalUUID] == "" {
			t.Errorf("levee_original_uuid empty")
		}
		if !utf8.ValidString(md[dlq.KeyError]) {
			t.Errorf("levee_error not valid UTF-8")
		}
	})
}

func TestLargeAndEmptyPayloads(t *testing.T) {
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, p := range [][]byte{nil, {}, big} {
		dl := deadLetterOf(t, message.NewMessage("p", p), dlq.Permanent(errBoom))
		if string(dl.Payload) != string(p) {
			t.Errorf("payload of %d bytes: got %d bytes, not byte for byte", len(p), len(dl.Payload))
		}
	}
}

func TestParseDeadLetterRoundTrip(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		msg := message.NewMessage("rt", []byte("{}"))
		msg.Metadata.Set(dlq.KeyReplayCount, "2")
		dl := deadLetterOf(t, msg, &validationErr{paths: []string{"/a: x", "/b: y"}}, dlq.WithConsumerGroup("g"))
		got := dlq.ParseDeadLetter(dl)
		now := time.Now().UTC()
		if got.Class != dlq.ClassValidation || got.Attempts != 1 || got.ReplayCount != 2 || got.ConsumerGroup != "g" ||
			got.OriginalUUID != "rt" || got.DLQTopic != testDLQ || got.ErrorType != "*dlq_test.validationErr" ||
			!got.FirstFailureAt.Equal(now) || !got.LastFailureAt.Equal(now) || len(got.ValidationErrors) != 2 ||
			got.Fingerprint != dl.Metadata[dlq.KeyFingerprint] {
			t.Errorf("got %+v", got)
		}
	})
}

func FuzzParseDeadLetter(f *testing.F) {
	f.Add("0123456789abcdef", "permanent", "3", "2026-01-02T03:04:05Z", `["/a"]`)
	f.Add("", "", "", "", "")
	f.Add("XYZ", "weird", "-1", "yesterday", `{`)
	f.Fuzz(func(t *testing.T, fp, class, attempts, ts, verrs string) {
		msg := message.NewMessage("", nil)
		msg.Metadata.Set(dlq.KeyFingerprint, fp)
		msg.Metadata.Set(dlq.KeyErrorClass, class)
		msg.Metadata.Set(dlq.KeyAttempts, attempts)
		msg.Metadata.Set(dlq.KeyReplayCount, attempts)
		msg.Metadata.Set(dlq.KeyFirstFailureAt, ts)
		msg.Metadata.Set(dlq.KeyValidationErrors, verrs)
		d := dlq.ParseDeadLetter(msg)
		if d.Fingerprint == "" || d.Attempts < 0 || d.ReplayCount < 0 {
			t.Errorf("got %+v", d)
		}
		if d.Fingerprint != fp && d.Fingerprint != dlq.UnknownFingerprint {
			t.Errorf("fingerprint: got %q from %q", d.Fingerprint, fp)
		}
	})
}
