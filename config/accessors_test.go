package config_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// transportSection stands in for adapters.TransportConfig: a struct with
// yaml tags and a Validate method.
type transportSection struct {
	Kind        string `yaml:"kind"`
	Concurrency int    `yaml:"concurrency"`
}

func (t transportSection) Validate() error {
	if t.Concurrency < 0 {
		return errors.New("concurrency must not be negative")
	}
	return nil
}

func TestTransportDecode(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("transport:\n  kind: amqp\n  concurrency: 8\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport().IsZero() {
		t.Fatal("IsZero() = true for a file with a transport section")
	}
	var tc transportSection
	if err := cfg.Transport().Decode(&tc); err != nil {
		t.Fatal(err)
	}
	if tc != (transportSection{Kind: "amqp", Concurrency: 8}) {
		t.Fatalf("got %+v", tc)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"transport:\n  kind: amqp\n  concurency: 8\n", `levee.yaml:3: transport.concurency: unknown key`},
		{"transport:\n  concurrency: many\n", `levee.yaml:2: transport.concurrency:`},
		{"transport:\n  concurrency: -1\n", `levee.yaml:2: transport: concurrency must not be negative`},
	} {
		cfg, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.Transport().Decode(&transportSection{})
		if !errors.Is(err, config.ErrInvalidConfig) || !errors.Is(err, levee.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want prefix %q wrapping ErrInvalidConfig", tt.yaml, err, tt.want)
		}
	}
	empty, err := config.Parse("levee.yaml", []byte("handlers: {}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc = transportSection{Kind: "kept"}
	if !empty.Transport().IsZero() || empty.Transport().Decode(&tc) != nil || tc.Kind != "kept" {
		t.Fatalf("absent section: IsZero %v, decoded %+v; want true and v unchanged", empty.Transport().IsZero(), tc)
	}
}

func TestStoreSection(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("store: {kind: redis, url: \"redis://127.0.0.1:6379/0\", prefix: a}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := cfg.Store()
	if !ok || sc.StoreKind() != dlqops.StoreKindRedis || sc.URL != "redis://127.0.0.1:6379/0" || sc.Prefix != "a" {
		t.Fatalf("Store() = %+v, %v", sc, ok)
	}
	none, err := config.Parse("levee.yaml", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc, ok := none.Store(); ok || sc.StoreKind() != dlqops.StoreKindMemory {
		t.Fatalf("absent store: got %+v, %v; want the in-memory zero value and false", sc, ok)
	}
	if _, err := config.Parse("levee.yaml", []byte("store: {kind: mysql}\n"), nil, nil); !errors.Is(err, config.ErrInvalidConfig) ||
		!strings.HasPrefix(err.Error(), "levee.yaml:1: store") {
		t.Fatalf("bad store: got %v", err)
	}
}

func TestHandlerSections(t *testing.T) {
	cfg := loadFull(t)
	if got := cfg.File(); got != "testdata/levee.yaml" {
		t.Errorf("File() = %q", got)
	}
	if cfg.Schemas() == nil {
		t.Error("Schemas() = nil for a file with a schemas section")
	}
	bc, ok := cfg.Handler("sms").Batch()
	if !ok || bc.MaxSize == nil || *bc.MaxSize != 10 || bc.MaxWait == nil || *bc.MaxWait != 5*time.Millisecond {
		t.Fatalf("sms Batch() = %+v, %v", bc, ok)
	}
	if v, ok := config.Value[batch.Config](cfg.Handler("sms"), "batch"); !ok || *v.MaxSize != 10 {
		t.Fatalf("Value[batch.Config] = %+v, %v", v, ok)
	}
	if _, ok := config.Value[int](cfg.Handler("sms"), "batch"); ok {
		t.Fatal("Value with the wrong type reports ok")
	}
	if _, ok := cfg.Handler("payments").Batch(); ok {
		t.Fatal("payments has no batch section, but Batch reports one")
	}
	missing := cfg.Handler("nope")
	if missing != nil || missing.Name() != "" || missing.Describe() != "" {
		t.Fatalf("unconfigured handler: %v", missing)
	}
	if _, ok := missing.Batch(); ok {
		t.Fatal("a nil *Handler reports a batch section")
	}
	if got := cfg.Handler("payments").Name(); got != "payments" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestAppliedLimiter(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  sms:\n    ratelimit: {rate: 10/s, burst: 3}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if l, ok := a.Limiter("sms"); !ok || l == nil {
		t.Fatalf("Limiter(sms) = %v, %v", l, ok)
	}
	if _, ok := a.Breaker("sms"); ok {
		t.Fatal("sms has no breaker section, but Breaker reports one")
	}
}

// Config.Batcher applies the handler's batch section (max_size 2 fires a
// batch of two), the section's max_hold over Deps.MaxHold, and batch.New's
// validation.
func TestBatcher(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  inv:\n    batch: {max_size: 2, max_wait: 1h}\n  held:\n    batch: {max_wait: 1s, max_hold: 2s}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sizes := make(chan int, 2)
	b, err := cfg.Batcher("inv", func(_ context.Context, msgs []*message.Message) error {
		sizes <- len(msgs)
		return nil
	}, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, id := range []string{"1", "2"} {
		wg.Go(func() {
			if _, err := b.Handler(message.NewMessage(id, nil)); err != nil {
				t.Errorf("message %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if got := <-sizes; got != 2 {
		t.Fatalf("batch of %d, want 2 (the section's max_size)", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context, []*message.Message) error { return nil }
	// Deps.MaxHold below the section's max_wait is rejected by batch.New,
	// the error naming max_wait and the max hold, not a max_hold the file
	// does not set (it said "max_hold: must be longer than max_wait (1h0m0s),
	// got 1s")...
	if _, err := cfg.Batcher("inv", noop, config.Deps{MaxHold: time.Second}); !errors.Is(err, batch.ErrInvalidConfig) ||
		!strings.HasPrefix(err.Error(), "levee.yaml:3: handlers.inv.batch.max_wait: the batch's max_wait is not shorter than the max hold 1s (config.Deps.MaxHold") {
		t.Fatalf("got %v, want batch.ErrInvalidConfig located at handlers.inv.batch.max_wait, naming the max hold", err)
	}
	// ...also when the max_wait is the default or the application's own.
	if _, err := cfg.Batcher("other", noop, config.Deps{MaxHold: 10 * time.Millisecond}); !errors.Is(err, batch.ErrInvalidConfig) ||
		!strings.HasPrefix(err.Error(), "levee.yaml: handlers.other.batch: the batch's max_wait is not shorter than the max hold 10ms") {
		t.Fatalf("got %v, want batch.ErrInvalidConfig naming the default max_wait and the max hold", err)
	}
	if _, err := cfg.Batcher("other", noop, config.Deps{MaxHold: time.Second}, batch.WithMaxWait(2*time.Second)); !errors.Is(err, batch.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "the batch's max_wait is not shorter than the max hold 1s") {
		t.Fatalf("got %v, want batch.ErrInvalidConfig naming the max hold", err)
	}
	// ...while the section's own max_hold takes precedence over it.
	held, err := cfg.Batcher("held", noop, config.Deps{MaxHold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_ = held.Close()
	// An unconfigured handler gets batch's defaults.
	def, err := cfg.Batcher("other", noop, config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	_ = def.Close()
}

// A nil *Config (what a failed Load returns, used without checking its
// error) is an error from Apply, Build and Batcher, never a panic; so is
// a nil router.
func TestNilConfigIsAnError(t *testing.T) {
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("levee.yaml", []byte("handlers: {}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var none *config.Config
	for name, call := range map[string]func() error{
		"Apply":      func() error { _, err := config.Apply(router, none, config.Deps{}); return err },
		"Build":      func() error { _, err := config.Build(none, config.Deps{}); return err },
		"Batcher":    func() error { _, err := none.Batcher("h", nil, config.Deps{}); return err },
		"nil router": func() error { _, err := config.Apply(nil, cfg, config.Deps{}); return err },
	} {
		if err := call(); !errors.Is(err, config.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}
