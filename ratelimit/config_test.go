package ratelimit

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
)

func decodeSection(t *testing.T, y string) (Config, error) {
	t.Helper()
	doc, err := lconfig.Parse("levee.yaml", []byte(y), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var c Config
	err = doc.Decode(&c)
	return c, err
}

func TestConfigDecodeAndBuild(t *testing.T) {
	c, err := decodeSection(t, `
rate: 200/s
burst: 20
mode: reject
max_wait: 1s
catch_up: 5ms
key: {metadata: customer_id}
per_key:
  rate: 5/s
  burst: 2
  max_keys: 100
  idle: 1m
  overrides:
    vip: {rate: 50/s, burst: 10}
    "": {rate: 1/s}
`)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	l, err := New(c.Options()...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer l.Close()
	if l.Rate() != 200 || l.Burst() != 20 || l.Mode() != ModeReject || l.maxWait != float64(time.Second) {
		t.Fatalf("got rate=%v burst=%v mode=%v maxWait=%v", l.Rate(), l.Burst(), l.Mode(), l.maxWait)
	}
	k := l.keys
	if k.metadata != "customer_id" || k.def != (limitSpec{5, 2}) || k.maxKeys != 100 || k.idle != time.Minute {
		t.Fatalf("per-key got %+v", k)
	}
	if k.overrides["vip"] != (limitSpec{50, 10}) || k.overrides[""] != (limitSpec{1, 1}) {
		t.Fatalf("overrides got %v", k.overrides)
	}
	if got := k.fallback.b.Snapshot().Rate; got != 1 {
		t.Fatalf("fallback rate %v, want the \"\" override 1", got)
	}
}

func TestConfigAdaptive(t *testing.T) {
	c, err := decodeSection(t, `
adaptive: {min: 50/s, max: 1000/s, target_latency: 200ms, max_error_rate: 2%, decrease: 70%}
`)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	l, err := New(c.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := l.adapt.cfg
	if l.Rate() != 1000 || a.Min != 50 || a.TargetLatency != 200*time.Millisecond || a.MaxErrorRate != 0.02 || math.Abs(a.Decrease-0.7) > 1e-12 {
		t.Fatalf("got rate %v, %+v", l.Rate(), a)
	}
}

func TestConfigZeroIsUnlimited(t *testing.T) {
	l, err := New(Config{}.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !math.IsInf(l.Rate(), 1) {
		t.Fatalf("Rate %v", l.Rate())
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		yaml, wantPath, wantText string
	}{
		{"rate: 10/s\nburst: 0\n", "burst", "at least 1"},
		{"rate: 10/s\nmode: sometimes\n", "mode", `"wait" or "reject"`},
		{"key: {metadata: c}\n", "per_key", "required"},
		{"per_key: {rate: 5/s}\n", "key", "required"},
		{"key: {metadata: c}\nper_key: {rate: 5/s, burst: 0}\n", "per_key.burst", "at least 1"},
		{"key: {metadata: c}\nper_key: {rate: 5/s, max_keys: -1}\n", "per_key.max_keys", "at least 1"},
		{"rate: 5000/s\nadaptive: {min: 1/s, max: 100/s}\n", "rate", "within adaptive"},
		{"adaptive: {min: 10/s, max: 1/s}\n", "adaptive.max", "at least"},
		{"key: {metadata: \"\"}\nper_key: {rate: 1/s}\n", "key.metadata", "metadata key"},
		{"rate: -5/s\n", "rate", "negative"}, // the decoder's own check
	} {
		t.Run(tc.wantPath, func(t *testing.T) {
			_, err := decodeSection(t, tc.yaml)
			var ce *lconfig.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a located config error", err)
			}
			if ce.Path != tc.wantPath || !strings.Contains(err.Error(), tc.wantText) || ce.Line == 0 {
				t.Fatalf("got %v (path %q line %d), want path %q mentioning %q", err, ce.Path, ce.Line, tc.wantPath, tc.wantText)
			}
		})
	}
}

// TestValidateMatchesNew: Validate and New share the rules.
func TestValidateMatchesNew(t *testing.T) {
	r := math.NaN()
	c := Config{Rate: &r}
	_, nerr := New(c.Options()...)
	verr := c.Validate()
	if !errors.Is(nerr, ErrInvalidConfig) || !errors.Is(verr, ErrInvalidConfig) {
		t.Fatalf("New: %v; Validate: %v", nerr, verr)
	}
}
