package archtest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Broker and database clients that core packages must not import, directly
// or through a dependency.
var forbidden = []string{
	"github.com/ThreeDotsLabs/watermill-", // every transport module
	"github.com/rabbitmq/amqp091-go",
	"github.com/streadway/amqp",
	"github.com/IBM/sarama",
	"github.com/Shopify/sarama",
	"github.com/twmb/franz-go",
	"github.com/segmentio/kafka-go",
	"github.com/confluentinc/",
	"github.com/nats-io/",
	"github.com/redis/",
	"github.com/go-redis/",
	"github.com/jackc/",
	"github.com/lib/pq",
	"github.com/go-sql-driver/",
}

// Packages outside the core, which may import anything.
func isCore(pkg string) bool {
	rel := strings.TrimPrefix(pkg, "github.com/levee-dev/levee")
	rel = strings.TrimPrefix(rel, "/")
	for _, p := range []string{"adapters", "cmd", "examples", "bench", "chaos"} {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return false
		}
	}
	return true
}

type listed struct {
	ImportPath string
	Deps       []string
}

func TestCoreImportsNoBrokerOrDatabaseClient(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps", "github.com/levee-dev/levee/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(&out)
	checked := 0
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !isCore(p.ImportPath) {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			for _, f := range forbidden {
				if matches(dep, f) {
					t.Errorf("core package %s imports %s (forbidden: %s); move that code to adapters/", p.ImportPath, dep, f)
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked only %d core packages; go list output looks wrong", checked)
	}
}

func TestIsCore(t *testing.T) {
	for pkg, want := range map[string]bool{
		"github.com/levee-dev/levee/middleware":      true,
		"github.com/levee-dev/levee/internal/config": true,
		"github.com/levee-dev/levee/adapters":        false,
		"github.com/levee-dev/levee/adapters/pg":     false,
		"github.com/levee-dev/levee/cmd/levee":       false,
		"github.com/levee-dev/levee/examples/orders": false,
		"github.com/levee-dev/levee/bench":           false,
		"github.com/levee-dev/levee/chaos":           false,
		"github.com/levee-dev/levee/chaos/cmd/chaos": false,
		"github.com/levee-dev/levee/adaptersx":       true,
	} {
		if got := isCore(pkg); got != want {
			t.Errorf("isCore(%s) = %v, want %v", pkg, got, want)
		}
	}
}

// matches reports whether the import path dep is the module or prefix f.
func matches(dep, f string) bool {
	if strings.HasSuffix(f, "/") || strings.HasSuffix(f, "-") {
		return strings.HasPrefix(dep, f)
	}
	return dep == f || strings.HasPrefix(dep, f+"/")
}

func TestMatches(t *testing.T) {
	for _, tt := range []struct {
		dep, f string
		want   bool
	}{
		{"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp", "github.com/ThreeDotsLabs/watermill-", true},
		{"github.com/ThreeDotsLabs/watermill/message", "github.com/ThreeDotsLabs/watermill-", false},
		{"github.com/lib/pq", "github.com/lib/pq", true},
		{"github.com/lib/pqx", "github.com/lib/pq", false},
		{"github.com/jackc/pgx/v5", "github.com/jackc/", true},
	} {
		if got := matches(tt.dep, tt.f); got != tt.want {
			t.Errorf("matches(%s, %s) = %v, want %v", tt.dep, tt.f, got, tt.want)
		}
	}
}
