package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dedup"
)

func TestDedupSection(t *testing.T) {
	yaml := "handlers:\n  inv:\n    dedup: {key: {json_pointer: /order/id}, lease: 1m, window: 1h}\n"
	cfg, err := config.Parse("levee.yaml", []byte(yaml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{MaxHold: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got, want := a.Stack("inv").Describe(), "1. dedup store=memory key=json_pointer:/order/id lease=1m0s window=1h0m0s\n"; got != want {
		t.Errorf("describe: got %q, want %q", got, want)
	}
	d, ok := a.Dedup("inv")
	if !ok || d.Lease() != time.Minute || d.Window() != time.Hour {
		t.Fatalf("Dedup: got %v %v", d, ok)
	}
	runs := 0
	h := a.Stack("inv").Middleware(func(*message.Message) ([]*message.Message, error) { runs++; return nil, nil })
	for _, uuid := range []string{"a", "b"} {
		if _, err := h(message.NewMessage(uuid, []byte(`{"order":{"id":"o1"}}`))); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Errorf("runs: got %d, want 1 (same order id)", runs)
	}
}

func TestDedupSectionErrors(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		deps       config.Deps
		where      string // in the error
	}{
		{"store kind", "store: disk", config.Deps{}, "store"},
		{"two keys", "key: {metadata: a, json_pointer: /a}", config.Deps{}, "not both"},
		{"bad pointer", "key: {json_pointer: a}", config.Deps{}, "must start with /"},
		{"negative lease", "lease: -1s", config.Deps{}, "lease"},
		{"max_keys with shared", "{store: shared, max_keys: 5}", config.Deps{}, "max_keys"},
		{"shared without a store", "store: shared", config.Deps{}, "Deps.DedupStore"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.yaml
			if !strings.HasPrefix(body, "{") {
				body = "{" + body + "}"
			}
			cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  inv:\n    dedup: "+body+"\n"), nil, nil)
			if err == nil {
				var a *config.Applied
				a, err = config.Build(cfg, tt.deps)
				if err == nil {
					_ = a.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.where) {
				t.Fatalf("got %v, want an error naming %q", err, tt.where)
			}
			if !errors.Is(err, config.ErrInvalidConfig) && !errors.Is(err, dedup.ErrInvalidConfig) && !strings.Contains(err.Error(), "Deps") {
				t.Errorf("got %v, want it to wrap ErrInvalidConfig", err)
			}
		})
	}
}

// TestDedupSharedStoreNamespacesHandlers: two handlers on one shared
// store each run the same message once.
func TestDedupSharedStoreNamespacesHandlers(t *testing.T) {
	yaml := "handlers:\n  a:\n    dedup: {store: shared}\n  b:\n    dedup: {store: shared}\n"
	cfg, err := config.Parse("levee.yaml", []byte(yaml), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := dedup.NewMemStore(10)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{DedupStore: store})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	runs := map[string]int{}
	for range 2 {
		for _, h := range []string{"a", "b"} {
			mw := a.Stack(h).Middleware(func(*message.Message) ([]*message.Message, error) { runs[h]++; return nil, nil })
			if _, err := mw(message.NewMessage("m1", nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if runs["a"] != 1 || runs["b"] != 1 {
		t.Errorf("runs: got %v, want 1 each", runs)
	}
}
