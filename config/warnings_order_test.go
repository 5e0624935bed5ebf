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
