package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

const fullYAML = `
schemas:
  sms.send: sms.json
schedulers:
  shared: {slots: 2, aging: 200ms, max_waiting: 100}
breakers:
  gateway: {consecutive_failures: 3, open_for: 1s}
handlers:
  payments:
    timeout: 2s
    priority: {scheduler: shared}
    breaker: {shared: gateway}
    dlq: {retry: {max_attempts: 3, initial: 10ms, max: 100ms}}
    recover: true
    metrics: true
    tracing: {system: gochannel}
  refunds:
    breaker: {shared: gateway}
    priority: {scheduler: shared}
  sms:
    dlq: {}
    batch: {max_size: 10, max_wait: 5ms}
`

func loadFull(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("testdata/levee.yaml", []byte(fullYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDescribeCanonicalOrder(t *testing.T) {
	cfg := loadFull(t)
	got := cfg.Handler("payments").Describe()
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		keys = append(keys, strings.Fields(line)[1])
	}
	want := "tracing metrics recover dlq breaker priority timeout"
	if strings.Join(keys, " ") != want {
		t.Fatalf("payments stack:\n%s\nwant order %s", got, want)
	}
	if !strings.Contains(cfg.Handler("sms").Describe(), "batch max_size=10 max_wait=5ms") {
		t.Fatalf("sms: %s", cfg.Handler("sms").Describe())
	}
}

func TestSectionErrorsAreLocated(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown scheduler", "handlers:\n  p:\n    priority: {scheduler: nope}\n",
			`levee.yaml:3: handlers.p.priority.scheduler: "nope" is not defined in the schedulers section (the file has no schedulers`},
		{"unknown shared breaker", "breakers:\n  a: {open_for: 1s}\nhandlers:\n  p:\n    breaker: {shared: b}\n",
			`levee.yaml:5: handlers.p.breaker.shared: "b" is not defined in the breakers section (defined: a)`},
		{"bad breaker ratio", "handlers:\n  p:\n    breaker:\n      failure_ratio: 1.5\n      min_requests: 5\n",
			"levee.yaml:4: handlers.p.breaker.failure_ratio"},
		{"bad scheduler", "schedulers:\n  s: {slots: -1}\n", "levee.yaml:2: schedulers.s.slots"},
		{"bad retry", "handlers:\n  p:\n    dlq:\n      retry: {max_attempts: 3, initial: 1s, max: 10ms}\n", "levee.yaml:4: handlers.p.dlq.retry"},
		{"bad batch", "handlers:\n  p:\n    batch: {max_size: 0}\n", "levee.yaml:3: handlers.p.batch.max_size"},
		{"bad propagator", "handlers:\n  p:\n    tracing: {propagators: [zipkin]}\n", "levee.yaml:3: handlers.p.tracing.propagators"},
		// An empty section is checked as {} is, not built without a scheduler.
		{"empty priority", "handlers:\n  p:\n    priority:\n", "levee.yaml:3: handlers.p.priority.scheduler: levee/priority: invalid option scheduler: a scheduler name is required"},
		{"null fleet", "handlers:\n  p:\n    fleet: ~\n", "levee.yaml:3: handlers.p.fleet: needs a ratelimit or a breaker subsection, or both"},
		{"missing schema file", "schemas:\n  t: missing.json\n", "levee.yaml:1: schemas:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got  %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestBuildSharesResources(t *testing.T) {
	cfg := loadFull(t)
	h := testkit.New(t)
	a, err := config.Build(cfg, config.Deps{Publisher: h.PubSub})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b1, ok1 := a.Breaker("payments")
	b2, ok2 := a.Breaker("refunds")
	if !ok1 || !ok2 || b1 == nil || b1 != b2 {
		t.Fatalf("shared breaker not shared: %p %p", b1, b2)
	}
	s1, _ := a.Scheduler("payments")
	s2, _ := a.Scheduler("refunds")
	if s1 == nil || s1 != s2 {
		t.Fatalf("shared scheduler not shared: %p %p", s1, s2)
	}
	if r, ok := a.Retrier("payments"); !ok || r.Backoff().MaxAttempts != 3 {
		t.Fatalf("payments retrier: %v %v", r, ok)
	}
	if _, ok := a.Retrier("refunds"); ok {
		t.Fatal("refunds has no dlq section, but Retrier reports one")
	}
	if _, ok := a.Limiter("payments"); ok {
		t.Fatal("payments has no ratelimit section, but Limiter reports one")
	}
	if _, ok := a.Breaker("nope"); ok {
		t.Fatal("an unconfigured handler has no breaker")
	}
	if a.Stack("payments").Len() != 7 {
		t.Fatalf("payments stack has %d slots:\n%s", a.Stack("payments").Len(), a.Stack("payments").Describe())
	}
}

func TestDLQNeedsPublisher(t *testing.T) {
	cfg := loadFull(t)
	if _, err := config.Build(cfg, config.Deps{}); err == nil || !strings.Contains(err.Error(), "Deps.Publisher") {
		t.Fatalf("got %v, want an error asking for Deps.Publisher", err)
	}
}

// The full stack from YAML over a real router: a schema violation is
// dead-lettered with class validation, a transient error is retried and
// succeeds, and every message is settled.
func TestApplyFullStackEndToEnd(t *testing.T) {
	cfg := loadFull(t)
	h := testkit.New(t)
	failedOnce := make(chan struct{}, 1)
	failedOnce <- struct{}{}
	h.Handle("payments", "payments", func(msg *message.Message) error {
		if string(msg.Payload) == "flaky" {
			select {
			case <-failedOnce:
				return errFlaky
			default:
			}
		}
		return nil
	})
	h.Handle("refunds", "refunds", func(*message.Message) error { return nil })
	h.Handle("sms", "sms.send", func(*message.Message) error { return nil })
	h.WatchDeadLetters("sms.send.dlq")
	a, err := config.Apply(h.Router, cfg, config.Deps{Publisher: h.PubSub})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h.Start()
	h.Publish("payments", message.NewMessage("p1", []byte("ok")), message.NewMessage("p2", []byte("flaky")))
	h.Publish("sms.send",
		message.NewMessage("s1", []byte(`{"to":"+4915112345678","body":"paid"}`)),
		message.NewMessage("s2", []byte(`{"to":"nope"}`)))
	c := h.WaitFor(func(c testkit.Counts) bool { return c.Acked == 4 && c.DeadLettered == 1 }, 10*time.Second)
	if c.Nacked != 0 {
		t.Fatalf("got %s: the dlq slot retries in-process, nothing should be Nacked", c)
	}
	dl := h.DeadLetters()[0]
	if dl.Metadata.Get(dlq.KeyErrorClass) != "validation" || dl.Metadata.Get(dlq.KeyValidationErrors) == "" {
		t.Fatalf("dead letter metadata: %v", dl.Metadata)
	}
}

var errFlaky = flakyError{}

type flakyError struct{}

func (flakyError) Error() string { return "gateway timeout" }

// countingAttempts is a dlq.AttemptStore that counts failures per UUID.
type countingAttempts struct{ n map[string]int }

func (c *countingAttempts) Fail(_ context.Context, _, uuid string, now time.Time, _ time.Duration) (int, time.Time, error) {
	c.n[uuid]++
	return c.n[uuid], now, nil
}

// `attempts: shared` needs a shared store section at load time and
// Deps.AttemptStore at build time; the built Retrier counts in it.
func TestDLQSharedAttempts(t *testing.T) {
	const shared = "store: {kind: redis, url: \"redis://127.0.0.1:6379/0\"}\nhandlers:\n  p:\n    dlq:\n      topic: x\n      retry: {max_attempts: 2, initial: 1ms, max: 1ms}\n      attempts: shared\n"
	for _, tt := range []struct{ name, yaml, want string }{
		{"no store", "handlers:\n  p:\n    dlq:\n      topic: x\n      attempts: shared\n",
			"levee.yaml:5: handlers.p.dlq.attempts: attempts: shared counts in the store section's backend; it needs `store: {kind: redis or postgres, ...}` (store kind is memory)"},
		{"memory store", "store: {kind: memory}\nhandlers:\n  p:\n    dlq: {attempts: shared}\n", "levee.yaml:4: handlers.p.dlq.attempts"},
		{"unknown mode", "handlers:\n  p:\n    dlq: {attempts: global}\n", `levee.yaml:3: handlers.p.dlq.attempts: unknown attempt counting "global"`},
		{"ttl without shared", "handlers:\n  p:\n    dlq: {attempt_ttl: 1h}\n", "levee.yaml:3: handlers.p.dlq.attempt_ttl: only with attempts: shared"},
		{"negative ttl", "store: {kind: postgres, url: x}\nhandlers:\n  p:\n    dlq: {attempts: shared, attempt_ttl: -1h}\n", "levee.yaml:4: handlers.p.dlq"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got  %v\nwant prefix %s", err, tt.want)
			}
		})
	}
	cfg, err := config.Parse("levee.yaml", []byte(shared), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Handler("p").Describe(); !strings.Contains(d, "attempts=shared") {
		t.Errorf("describe: %s", d)
	}
	h := testkit.New(t)
	if _, err := config.Build(cfg, config.Deps{Publisher: h.PubSub}); err == nil || !strings.Contains(err.Error(), "Deps.AttemptStore") {
		t.Fatalf("got %v, want an error asking for Deps.AttemptStore", err)
	}
	store := &countingAttempts{n: map[string]int{}}
	a, err := config.Build(cfg, config.Deps{Publisher: h.PubSub, AttemptStore: store})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	hf := a.Stack("p").Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("boom") })
	if _, err := hf(message.NewMessage("m-1", nil)); err != nil { // 2 attempts, then the DLQ topic x
		t.Fatalf("got %v, want dead-lettered", err)
	}
	if store.n["m-1"] != 2 {
		t.Errorf("store counted %d failures, want 2", store.n["m-1"])
	}
}

// Without a max_hold of its own, the dlq section holds a retry no longer
// than Deps.MaxHold (the transport's ack deadline): a backoff that would
// outlast it is Nacked for a delayed redelivery, not slept. The section's
// absent max_hold used to reset the bound to none.
func TestDLQTakesTheDepsMaxHold(t *testing.T) {
	y := "handlers:\n  h:\n    dlq: {retry: {initial: 2s, max: 2s}}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{Publisher: testkit.New(t).PubSub, MaxHold: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, _ := a.Retrier("h")
	if !strings.Contains(r.Label(), "max_hold=300ms") {
		t.Fatalf("dlq label %q has no max_hold=300ms", r.Label())
	}
	calls := 0
	h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
		calls++
		return nil, errors.New("busy")
	})
	_, err = h(message.NewMessage("m", nil))
	// The backoff is jittered: a short first delay may be slept within
	// the hold, a later one is not. Without the bound every delay was
	// slept and the fifth failure dead-lettered the message.
	var later *dlq.RetryLaterError
	if !errors.As(err, &later) {
		t.Fatalf("got %v after %d calls, want a RetryLaterError (the backoff outlasts the 300ms hold)", err, calls)
	}
}

// dlq.max_deferred reaches the Retrier (WithMaxDeferred); a negative one
// is an error at its key.
func TestDLQMaxDeferred(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  h:\n    dlq: {max_deferred: 1h}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{Publisher: testkit.New(t).PubSub})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if r, _ := a.Retrier("h"); !strings.Contains(r.Label(), "max_deferred=1h0m0s") {
		t.Fatalf("label %q lacks max_deferred=1h0m0s", r.Label())
	}
	_, err = config.Parse("levee.yaml", []byte("handlers:\n  h:\n    dlq:\n      max_deferred: -1s\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "levee.yaml:4: handlers.h.dlq.max_deferred") {
		t.Fatalf("got %v, want the negative max_deferred located", err)
	}
}

// TestErrorsMaskPasswords: a connection string written where a name or a
// path goes (a shared breaker, a schema file) is quoted in the error with
// its password masked.
func TestErrorsMaskPasswords(t *testing.T) {
	for _, y := range []string{
		"handlers:\n  p:\n    breaker: {shared: 'amqp://u:Sekr3t@h:5672/'}\n",
		"schemas:\n  t: postgres://u:Sekr3t@h:5432/db\n",
	} {
		_, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err == nil || strings.Contains(err.Error(), "Sekr3t") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("%q: got %v, want an error with the password masked", y, err)
		}
	}
}
