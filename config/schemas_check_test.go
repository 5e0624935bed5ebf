package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levee-dev/levee/config"
)

// TestCheckShowsSchemas: `levee config check` (Describe and Settings)
// shows the schemas section, which the dlq slot validates payloads with:
// the dlq line names the topics it validates, and each topic's schema is
// a setting with its line. Before, nothing in the output said that a
// handler validated its payloads, nor which schema file a topic had.
func TestCheckShowsSchemas(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"type": "object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "levee.yaml")
	yaml := "schemas:\n  orders: order.json\n  sms.send: order.json\nhandlers:\n  payments:\n    dlq: {}\n    timeout: 1s\n  audit:\n    timeout: 1s\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Describe()
	if !strings.Contains(d, "1. dlq topic=<topic>.dlq attempts=5 backoff=100ms..10s x2 validate=orders,sms.send\n") {
		t.Errorf("the dlq line does not name the schemas' topics:\n%s", d)
	}
	if strings.Count(d, "validate=") != 1 {
		t.Errorf("a handler without a dlq section shows validation:\n%s", d)
	}
	want := map[string]config.Setting{
		"schemas.orders":   {Path: "schemas.orders", Value: "order.json", Source: path + ":2"},
		"schemas.sms.send": {Path: "schemas.sms.send", Value: "order.json", Source: path + ":3"},
	}
	for _, s := range cfg.Settings() {
		if w, ok := want[s.Path]; ok {
			if s != w {
				t.Errorf("setting %+v, want %+v", s, w)
			}
			delete(want, s.Path)
		}
	}
	for p := range want {
		t.Errorf("Settings has no %s", p)
	}

	// Without schemas the dlq line is as before.
	if err := os.WriteFile(path, []byte("handlers:\n  payments:\n    dlq: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(path); err != nil {
		t.Fatal(err)
	}
	if d := cfg.Describe(); strings.Contains(d, "validate") {
		t.Errorf("validate= without schemas:\n%s", d)
	}
}
