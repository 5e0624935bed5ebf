package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/levee-dev/levee/config"
)

// Warnings come in the order of the file. They were sorted as strings,
// so in a file of many handlers line 103's warning came before line 11's
// and a reader could not follow them down the file.
func TestWarningsInLineOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("handlers:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  h%02d:\n    ratelimit: {rate: 0}\n", i)
	}
	cfg, err := config.Parse("levee.yaml", []byte(b.String()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.Warnings(config.Deps{})
	if len(ws) != 20 {
		t.Fatalf("got %d warnings, want 20 (one paused rate each):\n%s", len(ws), strings.Join(ws, "\n"))
	}
	for i, w := range ws {
		if want := fmt.Sprintf("levee.yaml:%d: handlers.h%02d.ratelimit.rate: ", 3+2*i, i); !strings.HasPrefix(w, want) {
			t.Errorf("warning %d is %q, want it to start with %q", i, w, want)
		}
	}
}

// A handler's breaker that refers to a shared breaker lists only the
// reference: the shared breaker's settings (breakers.NAME) are in effect.
// It listed every breaker key with its default beside it
// (consecutive_failures 5, open_for 10s), which read as the handler's
// policy while the shared breaker trips at 50 and opens for 1s.
func TestSettingsOfASharedBreaker(t *testing.T) {
	y := "breakers:\n  provider: {consecutive_failures: 50, open_for: 1s}\nhandlers:\n  a:\n    breaker: {shared: provider}\n    timeout: 1s\n"
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range cfg.Settings() {
		if strings.HasPrefix(s.Path, "handlers.a.") {
			got = append(got, s.Path+"="+s.Value)
		}
	}
	want := []string{"handlers.a.breaker.shared=provider", "handlers.a.timeout=1s"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}
