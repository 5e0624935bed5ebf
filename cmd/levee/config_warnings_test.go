package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckWarnings: a paused rate is a warning with its line;
// telemetry sections, whose providers only the service's code can give,
// get one note, not a warning each.
func TestConfigCheckWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee.yaml")
	body := "handlers:\n" +
		"  pay:\n" +
		"    tracing: {}\n" +
		"    metrics: true\n" +
		"    ratelimit: {rate: 0}\n" +
		"  ship:\n" +
		"    tracing: {}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	got := out.String()
	wantWarning := "warning: " + path + ":5: handlers.pay.ratelimit.rate: rate 0 pauses the handler"
	if !strings.Contains(got, wantWarning) {
		t.Errorf("got %q, want a line starting %q", got, wantWarning)
	}
	if n := strings.Count(got, "warning:"); n != 1 {
		t.Errorf("got %d warnings, want 1 (the paused rate):\n%s", n, got)
	}
	if !strings.Contains(got, "note: 3 telemetry sections (tracing, metrics) record only when the service passes") {
		t.Errorf("got %q, want one note for the 3 telemetry sections", got)
	}
}
