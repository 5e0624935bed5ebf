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
// concern (only middleware composes them), everything may use the root
// vocabulary package and internal/, and only the OTel API is used.
var allowed = map[string][]string{
	mod:                   nil,
	mod + "/ratelimit":    {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/breaker":      {"github.com/ThreeDotsLabs/watermill", "github.com/sony/gobreaker/v2", "otel", "root", "internal"},
	mod + "/priority":     {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/batch":        {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/dlq":          {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/dlq/dlqops":   {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal", mod + "/dlq"},
	mod + "/tracing":      {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal"},
	mod + "/middleware":   {"github.com/ThreeDotsLabs/watermill", "otel", "root", "internal", "concerns", "gopkg.in/yaml.v3"},
	mod + "/dlq/validate": {"github.com/ThreeDotsLabs/watermill", "github.com/santhosh-tekuri/jsonschema/v6", "root", "internal"},
	mod + "/dlq/dlqtest":  {"github.com/ThreeDotsLabs/watermill", mod + "/dlq"},
}

// concerns are the middleware packages only middleware composes.
var concerns = []string{"ratelimit", "breaker", "priority", "batch", "dlq", "tracing"}

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
