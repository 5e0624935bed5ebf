package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A mistyped KEY with --config is refused, naming the file's fleet
// breakers, before the store is reached: forcing a key no breaker reads
// printed "force open", exit 0, and held nothing (the store here is
// unreachable, so the refusal cannot come from it).
func TestFleetUnknownKeyIsRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "levee.yaml")
	y := "fleet: {store: \"redis://127.0.0.1:1/0\"}\nhandlers:\n  payments:\n    fleet:\n      breaker: {open_for: 5s}\n  emails:\n    fleet:\n      key: mail\n      breaker: {open_for: 5s}\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"fleet", "--config", cfg, "breaker", "paymnts", "force", "open"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `no fleet breaker with key "paymnts"; did you mean "payments"? (its fleet breakers: mail, payments;`) {
		t.Fatalf("exit %d, stderr %q; want 2 naming the key, the suggestion and the file's breakers", code, errb.String())
	}
	errb.Reset()
	// A configured key passes the check and reaches the (unreachable) store.
	if code := run([]string{"fleet", "--config", cfg, "breaker", "mail", "status"}, &out, &errb); code != 1 || strings.Contains(errb.String(), "no fleet breaker") {
		t.Fatalf("exit %d, stderr %q; want 1 from the unreachable store", code, errb.String())
	}
}
