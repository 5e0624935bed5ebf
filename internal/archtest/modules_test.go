package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// corePackages are the packages a user imports to wrap handlers; the core
// module (the repository root) holds them and nothing heavier.
var corePackages = []string{
	"github.com/levee-dev/levee",
	"github.com/levee-dev/levee/middleware",
	"github.com/levee-dev/levee/config",
	"github.com/levee-dev/levee/dlq",
	"github.com/levee-dev/levee/dlq/dlqops",
	"github.com/levee-dev/levee/validate",
	"github.com/levee-dev/levee/breaker",
	"github.com/levee-dev/levee/ratelimit",
	"github.com/levee-dev/levee/priority",
	"github.com/levee-dev/levee/batch",
	"github.com/levee-dev/levee/tracing",
}

// Modules a user who imports only core packages must not get in their
// module graph (broker and database clients, Prometheus, kfake, the
// transports), and modules whose packages must not be linked into their
// binary (the OTel SDK and exporters, which the core module needs only for
// its own tests).
var (
	notInGraph = []string{
		"github.com/ThreeDotsLabs/watermill-", "github.com/rabbitmq/", "github.com/IBM/sarama",
		"github.com/twmb/franz-go", "github.com/nats-io/", "github.com/redis/", "github.com/jackc/",
		"github.com/lib/pq", "github.com/prometheus/", "github.com/levee-dev/levee/adapters",
		"go.opentelemetry.io/otel/exporters/",
	}
	notLinked = []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters/"}
)

// TestCoreModuleGraph builds a tiny consumer module that imports every
// core package, as a user would (outside the workspace, the core module by
// a replace directive), and checks what Levee adds to its module graph (go
// list -m all) over a consumer of Watermill alone, which already brings
// Prometheus with it, and what its binary links (go list -deps).
func TestCoreModuleGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two modules with the go command")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var imports strings.Builder
	for _, p := range corePackages {
		imports.WriteString("\t_ \"" + p + "\"\n")
	}
	levee := consumer(t, "require github.com/levee-dev/levee v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/levee-dev/levee => "+root+"\n", imports.String())
	watermill := consumer(t, "require "+watermillRequirement(t, root)+"\n",
		"\t_ \"github.com/ThreeDotsLabs/watermill/message\"\n")

	baseline := modules(goCmd(t, watermill, "list", "-m", "all"))
	for mod := range modules(goCmd(t, levee, "list", "-m", "all")) {
		if baseline[mod] {
			continue
		}
		for _, f := range notInGraph {
			if matches(mod, f) {
				t.Errorf("importing Levee's core packages adds %s to a user's module graph (forbidden: %s)", mod, f)
			}
		}
	}
	deps := goCmd(t, levee, "list", "-deps", ".")
	for _, dep := range strings.Split(deps, "\n") {
		for _, f := range notLinked {
			if matches(dep, f) {
				t.Errorf("importing Levee's core packages links %s (forbidden: %s)", dep, f)
			}
		}
	}
	if !strings.Contains(deps, "github.com/levee-dev/levee/middleware") {
		t.Fatalf("go list -deps did not list the core packages:\n%s", deps)
	}
}

// consumer writes a main module with the given requirements and imports,
// tidies it and returns its directory.
func consumer(t *testing.T, require, imports string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/consumer\n\ngo 1.25.0\n\n"+require)
	write(t, filepath.Join(dir, "main.go"), "package main\n\nimport (\n"+imports+")\n\nfunc main() {}\n")
	goCmd(t, dir, "mod", "tidy")
	return dir
}

// watermillRequirement returns the core module's Watermill requirement,
// e.g. "github.com/ThreeDotsLabs/watermill v1.5.1".
func watermillRequirement(t *testing.T, root string) string {
	t.Helper()
	for _, line := range strings.Split(goCmd(t, root, "list", "-m", "all"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "github.com/ThreeDotsLabs/watermill" {
			return line
		}
	}
	t.Fatal("the core module does not require Watermill")
	return ""
}

// modules returns the module paths of go list -m all output.
func modules(out string) map[string]bool {
	mods := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			mods[f[0]] = true
		}
	}
	return mods
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goCmd runs the go command in dir outside any workspace and returns its
// standard output.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String()
}
