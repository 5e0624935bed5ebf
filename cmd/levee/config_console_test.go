package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levee-dev/levee/cmd/internal/console"
	"github.com/levee-dev/levee/config"
)

// TestConfigCheckConsole: `levee config check` validates the console
// section too, with the file, line and key.
func TestConfigCheckConsole(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body, want string
		code             int
	}{
		{"ok", "console:\n  tokens: [{name: ci, token: 0123456789abcdefgh, role: viewer}]\n", ": ok", 0},
		{"unknown key", "console:\n  lisen: x\n", `:2: console.lisen: unknown key "lisen"`, 1},
		{"short password", "console:\n  users: [{name: a, password: short, role: admin}]\n", `:2: console.users[0].password: console user "a": a password of at least 8 bytes`, 1},
		{"bad role", "console:\n  tokens: [{name: ci, token: 0123456789abcdefgh, role: root}]\n", `:2: console.tokens[0].role: console token "ci": role "root"`, 1},
		{"trace link", "console:\n  trace_link: http://jaeger/trace\n", ":2: console.trace_link: console trace_link \"http://jaeger/trace\" has no {trace_id}", 1},
		{"login throttle", "console:\n  tokens: [{name: ci, token: 0123456789abcdefgh, role: viewer}]\n  login_throttle: {burst: 5, per_minute: 2}\n", ": ok", 0},
		{"login throttle off", "console:\n  tokens: [{name: ci, token: 0123456789abcdefgh, role: viewer}]\n  login_throttle: {off: true}\n", ": ok", 0},
		{"negative login throttle", "console:\n  login_throttle: {per_minute: -1}\n", ":2: console.login_throttle.per_minute: console login_throttle: burst and per_minute must be finite and not negative", 1},
		{"canary wave 0", "console:\n  canary:\n    waves: [1, 0]\n", ":3: console.canary.waves: levee/dlqops: invalid configuration: canary wave size 0 must be positive", 1},
		{"canary ratio", "console:\n  canary:\n    max_failure_ratio: 150%\n", ":3: console.canary.max_failure_ratio:", 1},
		{"user listed twice", "console:\n  users:\n    - {name: a, password: longenough, role: admin}\n    - {name: a, password: longenough, role: viewer}\n", `:3: console.users: console user "a" listed twice`, 1},
		{"canary rate 0", "console:\n  canary: {rate: 0}\n", `:2: console.canary.rate: "0" is not allowed`, 1},
		{"canary wait 0", "console:\n  canary: {wait: 0s}\n", `:2: console.canary.wait: "0s" is not allowed`, 1},
		{"login throttle burst 0", "console:\n  login_throttle: {burst: 0}\n", `:2: console.login_throttle.burst: "0" is not allowed`, 1},
		{"login throttle per_minute 0", "console:\n  login_throttle: {per_minute: 0}\n", `:2: console.login_throttle.per_minute: "0" is not allowed`, 1},
		{"canary rate syntax", "console:\n  canary: {rate: 10/s}\n", ": ok", 0},
		{"canary rate per minute", "console:\n  canary: {rate: 600/min}\n", ": ok", 0},
		{"canary rate bare", "console:\n  canary: {rate: 10}\n", ": ok", 0},
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
		})
	}
}

// A section whose Validate finds several problems gives one line each,
// located at its own key (they lost their file and line before, then all
// named the section's first line).
func TestConfigCheckLocatesEachProblemOfASection(t *testing.T) {
	path, errb := checkFails(t, "handlers:\n  inventory:\n    dlq: {}\n    dedup:\n      store: bogus\n      max_keys: -1\n")
	for _, want := range []string{
		path + `:5: handlers.inventory.dedup.store: levee/dedup: invalid configuration: "bogus" is not memory or shared`,
		path + ":6: handlers.inventory.dedup.max_keys: levee/dedup: invalid configuration: -1 must be positive",
	} {
		if !strings.Contains(errb, want) {
			t.Errorf("got %q, want a line %q", errb, want)
		}
	}
}

// The transport section reports every problem, each at its key.
func TestConfigCheckEveryTransportProblem(t *testing.T) {
	path, errb := checkFails(t, "transport:\n  kind: amqp\n  concurrency: -1\n  amqp:\n    url: amqp://guest:guest@127.0.0.1:5672/\n    max_priority: 300\n    queue_type: Quorum\n")
	for _, want := range []string{
		": 3 problems",
		path + ":3: transport.concurrency:",
		path + ":6: transport.amqp.max_priority:",
		path + ":7: transport.amqp.queue_type:",
	} {
		if !strings.Contains(errb, want) {
			t.Errorf("got %q, want %q", errb, want)
		}
	}
}

// checkFails writes body to a levee.yaml, runs `levee config check` on it,
// expects exit 1 and returns the file's path and the standard error.
func checkFails(t *testing.T, body string) (path, stderr string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "levee.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	return path, errb.String()
}

// checkPasses writes body to a levee.yaml, runs `levee config check` on
// it, expects exit 0 and returns the file's path and the standard output.
func checkPasses(t *testing.T, body string) (path, stdout string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "levee.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, errb.String())
	}
	return path, out.String()
}

// TestConsoleCanaryRateSyntax: console.canary.rate takes the rate syntax
// of every other rate in the file (README, "Value syntax, everywhere"),
// as `levee dlq replay --rate` does; "10/s" was "not a number".
func TestConsoleCanaryRateSyntax(t *testing.T) {
	for _, tt := range []struct {
		rate string
		want float64
	}{{"10/s", 10}, {"600/min", 10}, {"3/250ms", 12}, {"7", 7}} {
		cfg, err := config.Parse("levee.yaml", []byte("console:\n  canary: {rate: "+tt.rate+"}\n"), nil, nil)
		if err != nil {
			t.Fatalf("rate %s: %v", tt.rate, err)
		}
		var cc console.Config
		if err := cfg.Console().Decode(&cc); err != nil {
			t.Fatalf("rate %s: %v", tt.rate, err)
		}
		if cc.Canary.Rate != tt.want {
			t.Errorf("rate %s: got %v, want %v", tt.rate, cc.Canary.Rate, tt.want)
		}
	}
}

// TestConfigCheckPrintsFleetAndConsoleSettings: `levee config check`
// prints every setting with its value and source (README, "Check a
// file"), the top-level fleet and console sections too, credentials
// hidden; it printed neither section.
func TestConfigCheckPrintsFleetAndConsoleSettings(t *testing.T) {
	body := "fleet: {store: \"redis://u:hunter2@127.0.0.1:6379/0\"}\n" +
		"console:\n  users: [{name: a, password: \"correct horse\", role: admin}]\n  canary: {wait: 1m}\n" +
		"  tokens: [{name: ci, token: \"0123456789abcdefgh\", role: viewer}]\n"
	path, printed := checkPasses(t, body)
	fields := map[string][]string{}
	for _, line := range strings.Split(printed, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			fields[f[0]] = f[1:]
		}
	}
	for key, want := range map[string]string{
		"fleet.store":                       "redis://u:xxxxx@127.0.0.1:6379/0 " + path + ":1",
		"fleet.prefix":                      "levee:fleet default",
		"console.listen":                    "127.0.0.1:8080 (or --listen) default",
		"console.users":                     "[0].name=a [0].password=xxxxx [0].role=admin " + path + ":3",
		"console.canary.waves":              "1, 2, 5, 20, 50, 100 default",
		"console.canary.wait":               "1m " + path + ":4",
		"console.canary.rate":               "10/s default",
		"console.tokens":                    "[0].name=ci [0].role=viewer [0].token=xxxxx " + path + ":5",
		"console.login_throttle.burst":      "10 default",
		"console.login_throttle.per_minute": "10 default",
	} {
		if got := strings.Join(fields[key], " "); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
	if strings.Contains(printed, "hunter2") || strings.Contains(printed, "correct horse") || strings.Contains(printed, "0123456789abcdefgh") {
		t.Errorf("a credential is printed:\n%s", printed)
	}
}
