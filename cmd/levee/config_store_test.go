package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckStoreURL: a store url its client refuses is a problem of
// the file, reported by `levee config check` at its line (README: "lists
// every problem at once"), without the password; check passed it and
// `levee dlq` failed on it later.
func TestConfigCheckStoreURL(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body, want string
		code             int
	}{
		{"postgres sslmode", "transport: {kind: gochannel}\nstore:\n  kind: postgres\n  url: \"postgres://u:hunter2@127.0.0.1:5432/db?sslmode=bogus\"\n",
			":4: store.url: levee/pgstore: invalid configuration: store url: cannot parse `postgres://u:xxxxx@127.0.0.1:5432/db?sslmode=bogus`", 1},
		{"redis database", "store: {kind: redis, url: \"redis://u:hunter2@127.0.0.1:6379/abc\"}\n",
			`:1: store.url: levee/redisstore: invalid configuration: store url: redis: invalid database number: "abc"`, 1},
		{"fleet store database", "fleet: {store: \"redis://u:hunter2@127.0.0.1:6379/abc\"}\n",
			`:1: fleet.store: levee/fleetredis: invalid configuration: url: redis: invalid database number: "abc"`, 1},
		{"valid fleet store", "fleet: {store: \"redis://u:hunter2@127.0.0.1:1/3\"}\n", ": ok", 0},
		// The schema the store refuses at Open (service.New, levee dlq),
		// which the check passed.
		{"postgres schema", "store: {kind: postgres, url: \"postgres://u:hunter2@127.0.0.1:1/db\", schema: \"x; drop\"}\n",
			`:1: store.schema: levee/pgstore: invalid configuration: schema "x; drop" is not a plain identifier`, 1},
		{"postgres schema too long", "store: {kind: postgres, url: \"postgres://u:hunter2@127.0.0.1:1/db\", schema: " + strings.Repeat("s", 64) + "}\n",
			`:1: store.schema: levee/pgstore: invalid configuration: schema "` + strings.Repeat("s", 64) + `" is not a plain identifier`, 1},
		{"valid postgres", "store: {kind: postgres, url: \"postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable\"}\n", ": ok", 0},
		{"valid redis", "store: {kind: redis, url: \"rediss://u:hunter2@127.0.0.1:1/2\"}\n", ": ok", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"config", "check", path}, &out, &errb)
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
				t.Errorf("got %d %q %q, want %d and %q", code, out.String(), errb.String(), tt.code, tt.want)
			}
			if strings.Contains(errb.String(), "hunter2") {
				t.Errorf("the password is printed: %q", errb.String())
			}
		})
	}
}
