package config

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// hostileValues are the scalars FuzzKeys sets keys to.
var hostileValues = testkit.HostileYAMLValues

// fuzzKeyPaths lists every key a levee.yaml may hold (every leaf of every
// section, from sectionDefaults, and the sections themselves), the
// shared resources and their references, and a few keys that do not
// exist.
func fuzzKeyPaths() []string {
	var out []string
	for sec, keys := range sectionDefaults() {
		prefix := "handlers.h." + sec
		switch sec {
		case "breakers":
			prefix = "breakers.b"
		case "schedulers":
			prefix = "schedulers.s"
		case "store":
			prefix = "store"
		}
		out = append(out, prefix)
		for k := range keys {
			out = append(out, prefix+"."+k)
		}
	}
	out = append(out, "handlers.h.recover", "handlers.h.timeout", "handlers.h.metrics",
		"handlers.h2.breaker.shared", "handlers.h2.priority.scheduler", "handlers.h2.dlq.retry.max_attempts",
		"handlers.h2.ratelimit.rate", "handlers.h2", "handlers", "fleet.store", "fleet.prefix", "fleet",
		"schedulers.s2.slots", "breakers.b2.open_for", "handlers.h.tiemout", "handlers.h.dlq.retry.nope",
		"transport.kind", "console.listen", "schemas.t", "nope", "breakers", "schedulers")
	slices.Sort(out)
	return out
}

// fuzzNode is a levee.yaml being generated: a scalar (its text) or a
// mapping (keys in the order they were set).
type fuzzNode struct {
	value string
	keys  []string
	kids  map[string]*fuzzNode
}

func (n *fuzzNode) set(path []string, value string) {
	if len(path) == 0 {
		n.value, n.keys, n.kids = value, nil, nil
		return
	}
	if n.kids == nil {
		n.kids = map[string]*fuzzNode{}
	}
	kid, ok := n.kids[path[0]]
	if !ok {
		kid = &fuzzNode{}
		n.kids[path[0]] = kid
		n.keys = append(n.keys, path[0])
	}
	kid.set(path[1:], value)
}

func (n *fuzzNode) emit(b *strings.Builder, indent int) {
	for _, k := range n.keys {
		kid := n.kids[k]
		b.WriteString(strings.Repeat("  ", indent) + k + ":")
		if kid.kids != nil {
			b.WriteString("\n")
			kid.emit(b, indent+1)
			continue
		}
		b.WriteString(" " + kid.value + "\n")
	}
}

// fuzzYAML builds a levee.yaml from picks: each pair of bytes sets one key
// (the first byte) to one value (the second: a hostile value, or with its
// high bit set one line of raw).
func fuzzYAML(picks []byte, raw string) string {
	paths := fuzzKeyPaths()
	lines := strings.Split(raw, "\n")
	root := &fuzzNode{}
	for i := 0; i+1 < len(picks); i += 2 {
		path := paths[int(picks[i])%len(paths)]
		v := hostileValues[int(picks[i+1])%len(hostileValues)]
		if picks[i+1]&0x80 != 0 {
			v = lines[int(picks[i+1]&0x7f)%len(lines)]
		}
		root.set(strings.Split(path, "."), v)
	}
	var b strings.Builder
	root.emit(&b, 0)
	return b.String()
}

// locatedLine matches one problem of a located error: the file, a line,
// and what is wrong.
var locatedLine = regexp.MustCompile(`^fuzz\.yaml:(\d+): \S`)

// FuzzKeys sets every key of a levee.yaml, alone and together, to hostile
// values (negative, zero, huge and overflowing numbers, durations and
// rates; NaN and infinities; the wrong type; unknown keys; null; tags;
// variables; and whatever the fuzzer writes) and loads, checks, describes,
// builds and applies the file. Expected: a file that fails gets an error
// wrapping ErrInvalidConfig whose every line names the file and a line of
// it; one that loads builds, or fails to build with such an error, and
// closes; nothing panics.
func FuzzKeys(f *testing.F) {
	f.Add([]byte{}, "")
	paths := fuzzKeyPaths()
	for i, p := range paths {
		for j := range hostileValues {
			if (i+j)%9 == 0 && strings.Count(p, ".") >= 1 {
				f.Add([]byte{byte(i), byte(j)}, "")
			}
		}
	}
	f.Add([]byte{byte(slices.Index(paths, "handlers.h.timeout")), 0x80}, "1h\n")
	env := func(name string) (string, bool) { return "5", name == "X" }
	f.Fuzz(func(t *testing.T, picks []byte, raw string) {
		if len(picks) > 64 {
			picks = picks[:64]
		}
		src := fuzzYAML(picks, raw)
		cfg, err := Parse("fuzz.yaml", []byte(src), env, nil)
		if err != nil {
			checkLocated(t, src, err)
			return
		}
		_ = cfg.Describe()
		_ = cfg.Settings()
		ds, err := dedup.NewMemStore(16)
		if err != nil {
			t.Fatal(err)
		}
		deps := Deps{Publisher: nopPublisher{}, Logger: watermill.NopLogger{}, MaxHold: time.Minute,
			AttemptStore: &memAttempts{}, DedupStore: ds, FleetStore: fleet.NewMemStore()}
		for _, w := range cfg.Warnings(deps) {
			if strings.ContainsAny(w, "\r\n") {
				t.Fatalf("warning %q spans lines\n%s", w, src)
			}
		}
		r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"h", "h2"} {
			r.AddConsumerHandler(name, "t", nopSubscriber{}, func(*message.Message) error { return nil })
		}
		a, err := Apply(r, cfg, deps)
		if err != nil {
			checkLocated(t, src, err)
			return
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v\n%s", err, src)
		}
	})
}

// checkLocated fails unless err wraps ErrInvalidConfig, shows no
// password of a URL, and each of its lines names the file and a line of
// src.
func checkLocated(t *testing.T, src string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error does not wrap ErrInvalidConfig: %v\n%s", err, src)
	}
	if strings.Contains(err.Error(), ":Sekr3t@") {
		t.Fatalf("error shows a URL's password: %v\n%s", err, src)
	}
	n := yamlLines(src)
	for _, line := range strings.Split(err.Error(), "\n") {
		m := locatedLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("error %q does not name the file and a line\nwhole error:\n%v\nfile:\n%s", line, err, src)
		}
		if l, _ := strconv.Atoi(m[1]); l < 1 || l > n {
			t.Fatalf("error %q names line %d of a %d-line file\n%s", line, l, n, src)
		}
	}
}

// yamlLines counts the lines of src as YAML does: a CR alone, NEL, LS
// and PS break lines too.
func yamlLines(src string) int {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	n := 1
	for _, r := range src {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// nopSubscriber lets FuzzKeys register handlers on a router it never runs.
type nopSubscriber struct{}

func (nopSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return nil, nil
}

func (nopSubscriber) Close() error { return nil }

// memAttempts is an in-memory dlq.AttemptStore for the sections with
// `attempts: shared`.
type memAttempts struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *memAttempts) Fail(_ context.Context, handler, uuid string, now time.Time, _ time.Duration) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[handler+"/"+uuid]++
	return m.n[handler+"/"+uuid], now, nil
}
