package archtest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/levee-dev/levee"

// otelAPI is the OpenTelemetry API (never the SDK or an exporter).
var otelAPI = []string{
	"go.opentelemetry.io/otel/attribute", "go.opentelemetry.io/otel/baggage", "go.opentelemetry.io/otel/codes",
	"go.opentelemetry.io/otel/metric", "go.opentelemetry.io/otel/propagation", "go.opentelemetry.io/otel/semconv/",
	"go.opentelemetry.io/otel/trace",
}

// allowed lists, per core package, the non-standard imports it may have
// (docs/ARCHITECTURE.md, "Import rules"): a concern imports no other
// concern (only config composes them from YAML), middleware is a leaf that
// imports no concern, no YAML and no JSON Schema, everything may use the
// root vocabulary package and internal/, and only the OTel API is used.
var allowed = map[string][]string{
	mod:                      nil,
	mod + "/ratelimit":       {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/breaker":         {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/priority":        {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/batch":           {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/dlq":             {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/dlq/dlqops":      {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal", mod + "/dlq"},
	mod + "/tracing":         {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/middleware":      {"github.com/ThreeDotsLabs/watermill", "root", "internal"},
	mod + "/config":          {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal", "concerns", mod + "/middleware", mod + "/validate", "gopkg.in/yaml.v3"},
	mod + "/validate":        {"github.com/ThreeDotsLabs/watermill", "github.com/santhosh-tekuri/jsonschema/v6", "root", "internal"},
	mod + "/dlq/dlqtest":     {"github.com/ThreeDotsLabs/watermill", mod + "/dlq"},
	mod + "/dedup":           {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/dedup/deduptest": {mod + "/dedup"},
	// the client side of fleet-wide state, shared by ratelimit and breaker:
	// it imports no concern, so neither imports the other through it.
	mod + "/internal/fleet": {"github.com/ThreeDotsLabs/watermill", "otel", "internal", mod + "/fleet"},
	// the fleet vocabulary a store implements: the standard library only.
	mod + "/fleet": nil,
}

// concerns are the middleware packages only config composes.
var concerns = []string{"ratelimit", "breaker", "priority", "batch", "dlq", "tracing", "dedup"}

// permits reports whether rule (an entry of allowed) admits the import imp.
func permits(rule, imp string) bool {
	switch rule {
	case "root":
		return imp == mod
	case "internal":
		return strings.HasPrefix(imp, mod+"/internal/")
	case "otel":
		for _, p := range otelAPI {
			if matches(imp, p) {
				return true
			}
		}
		return false
	case "concerns":
		for _, c := range concerns {
			if matches(imp, mod+"/"+c) {
				return true
			}
		}
		return false
	}
	return matches(imp, rule)
}

// TestImportRules checks every core package's direct imports against
// allowed: the rules of docs/ARCHITECTURE.md, each enforced here.
func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Standard", mod+"/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rules, ok := allowed[p.ImportPath]
		if !ok {
			continue
		}
		seen[p.ImportPath] = true
		for _, imp := range p.Imports {
			if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // standard library
			}
			ok := false
			for _, r := range rules {
				ok = ok || permits(r, imp)
			}
			if !ok {
				t.Errorf("%s imports %s, which the import rules do not allow", p.ImportPath, imp)
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("import rules name %s, which go list does not list", pkg)
		}
	}
}

func TestPermits(t *testing.T) {
	for _, tt := range []struct {
		rule, imp string
		want      bool
	}{
		{"root", mod, true},
		{"root", mod + "/dlq", false},
		{"internal", mod + "/internal/gcra", true},
		{"otel", "go.opentelemetry.io/otel/metric", true},
		{"otel", "go.opentelemetry.io/otel/sdk/metric", false},
		{"concerns", mod + "/ratelimit", true},
		{"concerns", mod + "/middleware", false},
		{"github.com/ThreeDotsLabs/watermill", "github.com/ThreeDotsLabs/watermill/message", true},
		{"github.com/ThreeDotsLabs/watermill", "github.com/ThreeDotsLabs/watermill-amqp/v3", false},
	} {
		if got := permits(tt.rule, tt.imp); got != tt.want {
			t.Errorf("permits(%s, %s) = %v, want %v", tt.rule, tt.imp, got, tt.want)
		}
	}
}

// TestAdaptersLayout: the transports and the stores never import each
// other, and no transport imports the adapters facade (which imports them).
func TestAdaptersLayout(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", mod+"/adapters/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	transports := []string{"gochannel", "amqp", "kafka", "nats", "redis", "postgres"}
	stores := []string{"pgstore", "redisstore", "dlqstore", "pgdedup", "redisdedup", "fleetredis"}
	in := func(pkg string, names []string) bool {
		for _, n := range names {
			if pkg == mod+"/adapters/"+n {
				return true
			}
		}
		return false
	}
	checked := 0
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		isTransport, isStore := in(p.ImportPath, transports), in(p.ImportPath, stores)
		if !isTransport && !isStore {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			switch {
			case isTransport && (imp == mod+"/adapters" || in(imp, stores)):
				t.Errorf("transport %s imports %s", p.ImportPath, imp)
			case isStore && (imp == mod+"/adapters" || in(imp, transports)):
				t.Errorf("store %s imports %s", p.ImportPath, imp)
			}
		}
	}
	if checked != len(transports)+len(stores) {
		t.Fatalf("checked %d transport and store packages, want %d", checked, len(transports)+len(stores))
	}
}

// TestMiddlewareIsALeaf: importing middleware (for Chain or a Stack) links
// no concern, no YAML and no JSON Schema, directly or through internal/;
// loading YAML is package config's.
func TestMiddlewareIsALeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", mod+"/middleware").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 3 {
		t.Fatalf("go list -deps listed %d packages; output looks wrong", len(deps))
	}
	forbidden := []string{"gopkg.in/yaml.v3", "github.com/santhosh-tekuri/jsonschema/v6", mod + "/config", mod + "/validate"}
	for _, c := range concerns {
		forbidden = append(forbidden, mod+"/"+c)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if matches(dep, f) {
				t.Errorf("middleware depends on %s", dep)
			}
		}
	}
}
