package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSuggest(t *testing.T) {
	known := []string{"breaker", "dlq", "priority", "ratelimit", "timeout", "tracing"}
	for in, want := range map[string]string{
		"timout": "timeout", "tiemout": "timeout", "ratelimt": "ratelimit", "Breaker": "breaker",
		"dql": "dlq", "x": "", "retry": "", "priorities": "priority", "timeout": "",
	} {
		if got := Suggest(in, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Suggest("b", []string{"a"}); got != "" {
		t.Errorf("a whole-word replacement was suggested: %q", got)
	}
}

func TestJoin(t *testing.T) {
	e := func(line int, msg string) error {
		return &Error{File: "f.yaml", Line: line, Path: "k", Err: errors.New(msg)}
	}
	if Join() != nil || Join(nil, nil) != nil {
		t.Fatal("Join of nothing is not nil")
	}
	one := e(3, "x")
	if got := Join(nil, one); got != one {
		t.Fatalf("Join of one error = %v, want it unchanged", got)
	}
	got := Join(e(9, "c"), Join(e(2, "a"), e(5, "b")), e(2, "a"))
	want := "f.yaml:2: k: a\nf.yaml:5: k: b\nf.yaml:9: k: c"
	if got.Error() != want {
		t.Fatalf("got\n%v\nwant (flattened, sorted, deduplicated)\n%s", got, want)
	}
	if !errors.Is(got, ErrInvalidConfig) {
		t.Fatal("Errors does not match ErrInvalidConfig")
	}
}

type zeroes struct {
	Slots int     `yaml:"slots" levee:"nonzero"`
	Ratio float64 `yaml:"ratio" levee:"percent,nonzero"`
	Free  int     `yaml:"free"`
	Mult  float64 `yaml:"mult"`
}

func TestNonzeroAndSources(t *testing.T) {
	doc, err := Parse("f.yaml", []byte("slots: 0\nratio: \"${R:-0%}\"\nfree: 0\nmult: 150%\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var z zeroes
	err = doc.Decode(&z)
	if err == nil || strings.Count(err.Error(), "\n") != 1 ||
		!strings.Contains(err.Error(), `f.yaml:1: slots: "0" is not allowed`) || !strings.Contains(err.Error(), `f.yaml:2: ratio: "0%" is not allowed`) {
		t.Fatalf("got %v, want slots and ratio rejected, free accepted", err)
	}
	if z.Mult != 1.5 {
		t.Fatalf("mult: got %v, want 1.5 from 150%%", z.Mult)
	}
	s, ok := doc.Sources.Lookup("ratio")
	if !ok || s.Line != 2 || s.Value != "0%" || s.Source("f.yaml") != "f.yaml:2, default of ${R:-...}" {
		t.Fatalf("ratio source: %+v", s)
	}
	doc, _ = Parse("f.yaml", []byte("slots:\n"), nil)
	if err := doc.Decode(&z); err == nil || !strings.Contains(err.Error(), "slots: is empty") {
		t.Fatalf("empty nonzero value: got %v", err)
	}
}

// TestNonzeroPointer: a nonzero tag on a pointer field (absent: nil; set:
// the value) rejects an explicit zero as on a plain field; the pointer
// case dropped the tag, so batch.max_hold: 0 was accepted.
func TestNonzeroPointer(t *testing.T) {
	var z struct {
		Hold *time.Duration `yaml:"hold" levee:"nonzero"`
		Rate *float64       `yaml:"rate" levee:"rate,nonzero"`
		Free *int           `yaml:"free"`
	}
	doc, err := Parse("f.yaml", []byte("hold: 0s\nrate: 0/s\nfree: 0\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = doc.Decode(&z)
	if err == nil || !strings.Contains(err.Error(), `f.yaml:1: hold: "0s" is not allowed`) || !strings.Contains(err.Error(), `f.yaml:2: rate: "0/s" is not allowed`) ||
		strings.Contains(err.Error(), "free") {
		t.Fatalf("got %v, want hold and rate rejected, free accepted", err)
	}
	doc, err = Parse("f.yaml", []byte("hold: 2s\nrate: 5/min\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Decode(&z); err != nil || *z.Hold != 2*time.Second || *z.Rate != 5.0/60 {
		t.Fatalf("got %v, hold %v, rate %v; want 2s and 5/min", err, z.Hold, z.Rate)
	}
}
