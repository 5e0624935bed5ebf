package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/fleet"
)

const fleetYAML = `
fleet: {store: "redis://127.0.0.1:6379/0", prefix: test}
handlers:
  payments:
    ratelimit: {rate: 1000/s, burst: 10}
    fleet:
      on_store_error: fail_closed
      ratelimit: {rate: 200/s, burst: 20, local_rate: 100/s}
      breaker: {failure_ratio: 50%, min_requests: 20, open_for: 5s, drain: {window: 10s, start: 10%}}
`

func TestFleetSection(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte(fleetYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := cfg.Fleet()
	if !ok || fc.Store != "redis://127.0.0.1:6379/0" || fc.Prefix != "test" {
		t.Errorf("Fleet() = %+v, %v", fc, ok)
	}
	d := cfg.Describe()
	for _, want := range []string{"fleet ratelimit=200/s breaker on_store_error=fail_closed"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() = %q, want it to contain %q", d, want)
		}
	}
	if _, err := config.Build(cfg, config.Deps{}); err == nil || !strings.Contains(err.Error(), "Deps.FleetStore") {
		t.Errorf("Build without a store: %v, want an error naming Deps.FleetStore", err)
	}
	a, err := config.Build(cfg, config.Deps{FleetStore: fleet.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := a.Stack("payments")
	if got := s.Describe(); !strings.Contains(got, "fleet ratelimit + ") || !strings.Contains(got, "fleet breaker") {
		t.Errorf("stack %q, want the fleet limit outside the local one and the fleet breaker", got)
	}
	h := s.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	if _, err := h(message.NewMessage("1", nil)); err != nil {
		t.Errorf("handler: %v", err)
	}
}

func TestFleetSectionErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"fleet: {store: \"http://x\"}\n", "levee.yaml:1: fleet.store: must be"},
		{"handlers:\n  p:\n    fleet: {on_store_error: maybe, ratelimit: {rate: 1/s}}\n", "on_store_error"},
		{"handlers:\n  p:\n    fleet: {}\n", "needs a ratelimit or a breaker subsection, or both"},
		// A handler's own ratelimit does not make its fleet section one:
		// the error says where the fleet's goes.
		{"handlers:\n  p:\n    ratelimit: {rate: 5/s}\n    fleet: {on_store_error: local}\n", "levee.yaml:4: handlers.p.fleet: needs a ratelimit or a breaker subsection, or both (fleet: {ratelimit: {rate: 200/s}}"},
		// Rules ratelimit.Fleet and breaker.Fleet enforce when building.
		{"handlers:\n  p:\n    fleet:\n      key: " + strings.Repeat("k", 201) + "\n      breaker: {}\n", "levee.yaml:4: handlers.p.fleet.key: is 201 bytes; a fleet key is at most 200"},
		{"handlers:\n  p:\n    fleet:\n      ratelimit: {rate: 5/s, per_key: {rate: 1/s}}\n", "levee.yaml:4: handlers.p.fleet.ratelimit.per_key.metadata: is required"},
		{"handlers:\n  p:\n    fleet:\n      ratelimit: {rate: 5/s, per_key: {metadata: k}}\n", "levee.yaml:4: handlers.p.fleet.ratelimit.per_key.rate: is required"},
		{"handlers:\n  p:\n    fleet:\n      ratelimit: {burst: 5}\n", "levee.yaml:4: handlers.p.fleet.ratelimit.rate: is required"},
	} {
		_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, config.ErrInvalidConfig) {
			t.Errorf("Parse(%q) = %v, want an invalid-config error containing %q", tt.yaml, err, tt.want)
		}
	}
}

// TestFleetSectionKeyAtMostWhatBuildAccepts: a key Validate accepts builds,
// and one byte more is rejected at load, not at Build.
func TestFleetSectionKeyAtMostWhatBuildAccepts(t *testing.T) {
	y := "handlers:\n  p:\n    fleet: {key: " + strings.Repeat("k", 200) + ", ratelimit: {rate: 5/s}, breaker: {}}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{FleetStore: fleet.NewMemStore()})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_ = a.Close()
}

// TestBuildErrorsAreLocated: a problem only building finds names the
// file, the section's line and its key path.
func TestBuildErrorsAreLocated(t *testing.T) {
	y := "handlers:\n  other:\n    recover: true\n  p:\n    recover: true\n    fleet: {breaker: {}}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Build(cfg, config.Deps{})
	if want := "levee.yaml:6: handlers.p.fleet: a fleet section needs Deps.FleetStore"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// A handler's fleet section in a file without the top-level fleet section
// loads (code may pass Deps.FleetStore) but `levee config check` used to
// say only "ok" for a file whose service then failed to start: it is
// warned about, unless the deps carry a fleet store.
func TestWarningFleetWithoutStore(t *testing.T) {
	y := "handlers:\n  payments:\n    fleet:\n      breaker: {open_for: 5s}\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "levee.yaml:3: handlers.payments.fleet: a fleet section needs a fleet store and the file has no top-level `fleet: {store: redis://...}`"
	if got := strings.Join(cfg.Warnings(config.Deps{}), "\n"); !strings.Contains(got, want) {
		t.Errorf("warnings %q lack %q", got, want)
	}
	if got := cfg.Warnings(config.Deps{FleetStore: fleet.NewMemStore()}); len(got) != 0 {
		t.Errorf("with a fleet store: warnings %q, want none", got)
	}
	withStore, err := config.Parse("levee.yaml", []byte(fleetYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(withStore.Warnings(config.Deps{}), "\n"); strings.Contains(got, "needs a fleet store") {
		t.Errorf("with the top-level section: warnings %q", got)
	}
}
