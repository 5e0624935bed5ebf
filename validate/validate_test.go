package validate_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/validate"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

func loadSMS(t *testing.T) *validate.Registry {
	t.Helper()
	r, err := validate.Load(map[string]string{"sms.send": "testdata/sms.json"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestValidate(t *testing.T) {
	r := loadSMS(t)
	tests := []struct {
		name    string
		payload string
		want    []string // instance paths of the violations; nil = valid
	}{
		{"valid", `{"to":"+4915112345678","body":"hi","sender":"Shop"}`, nil},
		{"bad phone", `{"to":"12","body":"hi"}`, []string{"/to"}},
		{"missing body", `{"to":"+4915112345678"}`, []string{""}},
		{"two problems", `{"to":5,"body":""}`, []string{"/body", "/to"}},
		{"ref checked", `{"to":"+4915112345678","body":"x","sender":"a very long sender"}`, []string{"/sender"}},
		{"extra key", `{"to":"+4915112345678","body":"x","x":1}`, []string{""}},
		{"malformed", `{"to":`, []string{""}},
		{"empty payload", ``, []string{""}},
		{"trailing garbage", `{} {}`, []string{""}},
		{"not an object", `[1,2]`, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate("sms.send", []byte(tt.payload))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			var ve *validate.Error
			if !errors.As(err, &ve) || !errors.Is(err, validate.ErrInvalidMessage) {
				t.Fatalf("got %v, want *validate.Error", err)
			}
			if dlq.Classify(err) != dlq.ClassValidation {
				t.Errorf("class: got %q, want validation", dlq.Classify(err))
			}
			var got []string
			for _, v := range ve.Violations {
				got = append(got, v.InstancePath)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("violations: got %q, want %q (%v)", got, tt.want, err)
			}
		})
	}
	if err := r.Validate("other.topic", []byte("not json")); err != nil {
		t.Errorf("topic without schema: got %v, want nil", err)
	}
}

func TestCompileAndLoadErrors(t *testing.T) {
	if _, err := validate.Compile(map[string][]byte{"t": []byte(`{"type": 5}`)}); !errors.Is(err, validate.ErrInvalidConfig) || !strings.Contains(err.Error(), `"t"`) {
		t.Errorf("invalid schema: got %v", err)
	}
	if _, err := validate.Compile(map[string][]byte{"t": []byte(`{`)}); !errors.Is(err, validate.ErrInvalidConfig) {
		t.Errorf("malformed schema: got %v", err)
	}
	if _, err := validate.Load(map[string]string{"t": "testdata/missing.json"}); !errors.Is(err, validate.ErrInvalidConfig) {
		t.Errorf("missing file: got %v", err)
	}
	if _, err := validate.Load(map[string]string{"t": "testdata/broken.json"}); !errors.Is(err, validate.ErrInvalidConfig) {
		t.Errorf("broken file: got %v", err)
	}
	// A path holding a newline is quoted: the error stays one line.
	if _, err := validate.Load(map[string]string{"t": "line\nbreak.json"}); !errors.Is(err, validate.ErrInvalidConfig) || strings.Contains(err.Error(), "\n") {
		t.Errorf("path with a newline: got %v", err)
	}
	r, err := validate.Compile(map[string][]byte{"a": []byte(`{"type":"integer","minimum":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Validate("a", []byte("5")) != nil || r.Validate("a", []byte("2")) == nil {
		t.Errorf("compiled schema does not validate as expected")
	}
}

func TestConfig(t *testing.T) {
	doc, err := config.Parse("levee.yaml", []byte("schemas:\n  sms.send: testdata/sms.json\n  bad: testdata/broken.json\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c validate.Config
	err = doc.Decode(&c)
	if err == nil || !strings.Contains(err.Error(), "levee.yaml:3: schemas.bad") {
		t.Fatalf("got %v, want an error located at schemas.bad", err)
	}
	c = validate.Config{Schemas: map[string]string{"sms.send": "testdata/sms.json"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Registry()
	if err != nil || !r.Has("sms.send") || len(r.Topics()) != 1 {
		t.Fatalf("registry: got %v, %v", r, err)
	}
}

type recPub struct{ got []*message.Message }

func (p *recPub) Publish(_ string, msgs ...*message.Message) error {
	p.got = append(p.got, msgs...)
	return nil
}
func (p *recPub) Close() error { return nil }

func TestPublisherRefusesInvalid(t *testing.T) {
	r := loadSMS(t)
	next := &recPub{}
	pub := r.Publisher(next)
	good := message.NewMessage("good", []byte(`{"to":"+4915112345678","body":"hi"}`))
	bad := message.NewMessage("bad", []byte(`{"to":"x"}`))
	err := pub.Publish("sms.send", good, bad)
	var pe *validate.PublishError
	if !errors.As(err, &pe) || !errors.Is(err, validate.ErrInvalidMessage) {
		t.Fatalf("got %v, want *PublishError wrapping ErrInvalidMessage", err)
	}
	for _, want := range []string{"message bad", "/to", "/ (", "body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(next.got) != 0 {
		t.Errorf("published %d messages of an invalid batch, want 0", len(next.got))
	}
	if err := pub.Publish("sms.send", good); err != nil || len(next.got) != 1 {
		t.Errorf("valid message: got %v with %d published", err, len(next.got))
	}
	if err := pub.Publish("no.schema", bad); err != nil || len(next.got) != 2 {
		t.Errorf("topic without schema: got %v with %d published", err, len(next.got))
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLettersValidationClass: inside the dlq Retrier, an invalid payload
// is dead-lettered at once as class validation, with the failing paths.
func TestDeadLettersValidationClass(t *testing.T) {
	r := loadSMS(t)
	dead := &recPub{}
	router, err := dlq.New(dead, dlq.WithTopic("sms.send.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	mw, err := r.MiddlewareFor("sms.send")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := router.Middleware(mw(func(*message.Message) ([]*message.Message, error) { calls++; return nil, nil }))
	if _, err := h(message.NewMessage("1", []byte(`{"to":"+4915112345678","body":"hi"}`))); err != nil || calls != 1 {
		t.Fatalf("valid: got %v after %d calls", err, calls)
	}
	if _, err := h(message.NewMessage("2", []byte(`{"to":"oops","body":""}`))); err != nil {
		t.Fatalf("invalid: got %v, want dead-lettered", err)
	}
	if calls != 1 || len(dead.got) != 1 {
		t.Fatalf("got %d handler calls and %d dead letters, want 1 and 1", calls, len(dead.got))
	}
	md := dead.got[0].Metadata
	if md[dlq.KeyErrorClass] != "validation" || md[dlq.KeyAttempts] != "1" {
		t.Errorf("class/attempts: got %s/%s", md[dlq.KeyErrorClass], md[dlq.KeyAttempts])
	}
	v := md[dlq.KeyValidationErrors]
	if !strings.Contains(v, "/to (/properties/to/pattern)") || !strings.Contains(v, "/body (/properties/body/minLength)") {
		t.Errorf("levee_validation_errors: got %s", v)
	}
	if _, err := r.MiddlewareFor("nope"); !errors.Is(err, validate.ErrInvalidConfig) {
		t.Errorf("MiddlewareFor unknown topic: got %v", err)
	}
}

// TestRouterWithValidatorOverGoChannel: dlq.WithValidator(registry.Validate)
// in a real router dead-letters malformed SMS as class validation with the
// topic from the router context, and lets valid ones through.
func TestRouterWithValidatorOverGoChannel(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reg := loadSMS(t)
		h := testkit.New(t)
		router, err := dlq.New(h.PubSub, dlq.WithValidator(reg.Validate))
		if err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		h.Handle("sms", "sms.send", func(*message.Message) error { handled.Add(1); return nil }, router.Middleware)
		h.WatchDeadLetters("sms.send.dlq")
		h.Start()
		payloads := []string{`{"to":"+4915112345678","body":"hi"}`, `{"to":"nope"}`, `garbage`, `{"to":"+4915112345678","body":"ok"}`}
		h.PublishN("sms.send", len(payloads), func(i int) *message.Message {
			return message.NewMessage(string(rune('a'+i)), []byte(payloads[i]))
		})
		c := h.WaitFor(func(c testkit.Counts) bool { return c.Acked == 4 && c.DeadLettered == 2 }, time.Minute)
		// calls: one per message on sms.send (the harness does not count
		// its own DLQ watcher)
		if handled.Load() != 2 || c.Calls != 4 {
			t.Errorf("got %d handled in %d calls, want 2 in 4 (%s)", handled.Load(), c.Calls, c)
		}
		for _, dl := range h.DeadLetters() {
			md := dl.Metadata
			if md[dlq.KeyErrorClass] != "validation" || md[dlq.KeyOriginalTopic] != "sms.send" || md[dlq.KeyValidationErrors] == "" {
				t.Errorf("dead letter %s: class %q topic %q validation %q", dl.UUID, md[dlq.KeyErrorClass], md[dlq.KeyOriginalTopic], md[dlq.KeyValidationErrors])
			}
		}
	})
}

func TestRegistryMiddlewareResolvesTopic(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reg := loadSMS(t)
		h := testkit.New(t)
		router, err := dlq.New(h.PubSub)
		if err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		h.Handle("sms", "sms.send", func(*message.Message) error { handled.Add(1); return nil }, router.Middleware, reg.Middleware)
		h.WatchDeadLetters("sms.send.dlq")
		h.Start()
		h.Publish("sms.send", message.NewMessage("bad", []byte(`{}`)), message.NewMessage("good", []byte(`{"to":"+4915112345678","body":"x"}`)))
		h.WaitFor(func(c testkit.Counts) bool { return c.Acked == 2 && c.DeadLettered == 1 }, time.Minute)
		if handled.Load() != 1 {
			t.Errorf("handled: got %d, want 1", handled.Load())
		}
	})
}

// TestHugeNumbersAreViolations: a number past MaxNumberExponent or
// MaxNumberLen is a violation at its path. The schema library compares
// numbers as big rationals: past an exponent of ±1,000,000 it panicked
// (minimum, maximum, multipleOf, uniqueItems), and below that a 9-byte
// "1e999999" cost it about 50 ms.
func TestHugeNumbersAreViolations(t *testing.T) {
	r, err := validate.Compile(fuzzSchemas)
	if err != nil {
		t.Fatal(err)
	}
	long := "1" + strings.Repeat("0", validate.MaxNumberLen)
	tests := []struct{ payload, path string }{
		{`{"n":1e1000001}`, "/n"},
		{`{"n":1e999999}`, "/n"},
		{`{"c":-1E+1000001}`, "/c"},
		{`{"i":1e-1000001}`, "/i"},
		{`{"a":[1,2,1e401]}`, "/a/2"},
		{`{"x":1e99999999999999999999999}`, "/x"},
		{`{"n":` + long + `}`, "/n"},
		{`{"b":1e500,"a":[1e500],"a~/":1e500}`, "/a"},
		{`1e1000001`, ""},
	}
	for _, tt := range tests {
		err := r.Validate("num", []byte(tt.payload))
		var ve *validate.Error
		if !errors.As(err, &ve) || len(ve.Violations) != 1 || !strings.HasPrefix(ve.Violations[0].InstancePath, tt.path) {
			t.Errorf("%.40s: got %v, want one violation at %q", tt.payload, err, tt.path)
		}
	}
	for _, ok := range []string{`{"n":1e2}`, `{"n":5E+2,"x":1e400}`, `{"a":[1e-400]}`, `{"n":` + long[:validate.MaxNumberLen-5] + `e-300}`} {
		if err := r.Validate("num", []byte(ok)); err != nil && strings.Contains(err.Error(), "number") {
			t.Errorf("%.40s: got %v, want no number violation", ok, err)
		}
	}
}

// TestDocStatesTheNumberBounds: docs/DLQ.md states the number bounds.
func TestDocStatesTheNumberBounds(t *testing.T) {
	data, err := os.ReadFile("../docs/DLQ.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(data)), " ")
	for _, want := range []string{
		"longer than " + strconv.Itoa(validate.MaxNumberLen) + " bytes (`validate.MaxNumberLen`)",
		"exponent beyond ±" + strconv.Itoa(validate.MaxNumberExponent) + " (`validate.MaxNumberExponent`)",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/DLQ.md lacks %q", want)
		}
	}
}
