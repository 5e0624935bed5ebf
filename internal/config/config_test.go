package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"200/s", 200, ""},
		{"200/sec", 200, ""},
		{"5/min", 5.0 / 60, ""},
		{"10/h", 10.0 / 3600, ""},
		{"3/250ms", 12, ""},
		{"100/10s", 10, ""},
		{"1/ms", 1000, ""},
		{"50", 50, ""},
		{"0/s", 0, ""},
		{" 7 / s ", 7, ""},
		{"-1/s", 0, "negative"},
		{"NaN/s", 0, "not a rate"},
		{"Inf/s", 0, "not a rate"},
		{"abc", 0, "not a rate"},
		{"5/fortnight", 0, "unknown unit"},
		{"5/0s", 0, "unknown unit"},
		{"1e308/1ns", 0, "not a finite rate"},
		{"1e-400/s", 0, "below the least rate"},
		{"1e-320/s", 0, "below the least rate"},
		{"1e-12", 0, "below the least rate"},
		{"1/h", 1.0 / 3600, ""},
		{"0.0/s", 0, ""},
		{"0e5", 0, ""},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRate(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"10%", 0.1, false}, {"100%", 1, false}, {"0%", 0, false}, {"0.25", 0.25, false},
		{"12.5 %", 0.125, false}, {"101%", 0, true}, {"-1%", 0, true}, {"x%", 0, true}, {"2", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePercent(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && math.Abs(got-tt.want) > 1e-12) {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

type inner struct {
	Rate    float64       `yaml:"rate" levee:"rate"`
	Start   float64       `yaml:"start" levee:"percent"`
	Wait    time.Duration `yaml:"wait"`
	Burst   int           `yaml:"burst"`
	Enabled bool          `yaml:"enabled"`
	Names   []string      `yaml:"names"`
}

func (i inner) Validate() error {
	if i.Burst < 0 {
		return Field("burst", errors.New("must be 0 or more"))
	}
	return nil
}

type outer struct {
	Inner *inner           `yaml:"inner"`
	Map   map[string]inner `yaml:"map"`
	Raw   Raw              `yaml:"raw"`
}

func TestDecodeKinds(t *testing.T) {
	y := `
inner:
  rate: 5/min
  start: ${START:-10%}
  wait: 250ms
  burst: 3
  enabled: true
  names: [a, b]
map:
  x: {rate: 1/s}
raw:
  anything: goes
`
	doc, err := Parse("f.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var o outer
	if err := doc.Decode(&o); err != nil {
		t.Fatal(err)
	}
	want := inner{Rate: 5.0 / 60, Start: 0.1, Wait: 250 * time.Millisecond, Burst: 3, Enabled: true, Names: []string{"a", "b"}}
	if o.Inner == nil || o.Inner.Rate != want.Rate || o.Inner.Start != want.Start || o.Inner.Wait != want.Wait ||
		o.Inner.Burst != 3 || !o.Inner.Enabled || strings.Join(o.Inner.Names, ",") != "a,b" {
		t.Fatalf("got %+v, want %+v", o.Inner, want)
	}
	if o.Map["x"].Rate != 1 {
		t.Fatalf("map: got %+v", o.Map)
	}
	if o.Raw.IsZero() || o.Raw.Path != "raw" || o.Raw.Line() != 11 {
		t.Fatalf("raw: got path %q line %d", o.Raw.Path, o.Raw.Line())
	}
	var m map[string]string
	if err := o.Raw.Decode(&m); err != nil || m["anything"] != "goes" {
		t.Fatalf("raw decode: %v %v", m, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"inner:\n  burst: -1\n", "f.yaml:2: inner.burst: must be 0 or more"},
		{"inner:\n  burst: 1.5\n", `f.yaml:2: inner.burst: "1.5" is not an integer`},
		{"inner:\n  rate: fast\n", `f.yaml:2: inner.rate: "fast" is not a rate`},
		{"inner:\n  start: 200%\n", `f.yaml:2: inner.start: "200%" is out of range`},
		{"inner:\n  names: {a: 1}\n", "f.yaml:2: inner.names: expected a list, got a mapping"},
		{"inner:\n  bogus: 1\n", `f.yaml:2: inner.bogus: unknown key "bogus" (known keys: burst, enabled, names, rate, start, wait)`},
		{"map:\n  x:\n    wait: -1s\n", `f.yaml:3: map.x.wait: "-1s" is negative`},
		{"inner: 5\n", `f.yaml:1: inner: expected a mapping of keys, got "5"`},
		// A connection string written at the wrong key is quoted with its
		// password masked.
		{"inner: nats://u:Sekr3t@h:4222\n", `f.yaml:1: inner: expected a mapping of keys, got "nats://u:xxxxx@h:4222"`},
		{"inner:\n  wait: amqp://u:Sekr3t@h/\n", `f.yaml:2: inner.wait: "amqp://u:xxxxx@h/" is not a duration`},
		{"inner:\n  burst: postgres://u:Sekr3t@h/db\n", `f.yaml:2: inner.burst: "postgres://u:xxxxx@h/db" is not an integer`},
		{"inner:\n  rate: redis://:Sekr3t@h:6379/0\n", `f.yaml:2: inner.rate: "redis://:xxxxx@h:6379/0" is not a rate`},
		// A long value is cut, with its length.
		{"inner:\n  wait: " + strings.Repeat("9", 1<<20) + "\n", `f.yaml:2: inner.wait: "` + strings.Repeat("9", 200) + `"… (1048576 bytes) is not a duration`},
	}
	for _, tt := range tests {
		doc, err := Parse("f.yaml", []byte(tt.yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		var o outer
		err = doc.Decode(&o)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("yaml %q:\n got  %v\n want %s", tt.yaml, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%v does not wrap ErrInvalidConfig", err)
		}
	}
}

func TestExpand(t *testing.T) {
	d := &decoder{env: func(k string) (string, bool) {
		switch k {
		case "SET":
			return "v", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}}
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${SET}", "v", ""},
		{"a-${SET}-b", "a-v-b", ""},
		{"${EMPTY}", "", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${UNSET:-x:y}", "x:y", ""},
		{"$$HOME", "$HOME", ""},
		{"cost $5", "cost $5", ""},
		{"trailing $", "trailing $", ""},
		{"${UNSET}", "", "is not set"},
		{"${", "", "unterminated"},
		{"${}", "", "not a valid variable name"},
		// The value is quoted in the error with its password hidden.
		{"amqp://u:Sekr${it@h:5672/", "", `unterminated ${ in "amqp://u:xxxxx@h:5672/"`},
	}
	for _, tt := range tests {
		got, err := d.expand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "Sekr") {
				t.Errorf("expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a: 1", "handlers:\n  x: {timeout: 1s}", "- [", "a: ${X:-1}", "&a [*a]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse("f.yaml", data, nil)
		if err != nil {
			return
		}
		var o outer
		_ = doc.Decode(&o)
		var m map[string]Raw
		_ = doc.Decode(&m)
	})
}

// quoting is a section whose Validate quotes its value, as a transport's
// does for an unknown kind.
type quoting struct {
	Kind string `yaml:"kind"`
}

func (q quoting) Validate() error {
	return errors.Join(Field("kind", fmt.Errorf("unknown kind %q", q.Kind)), fmt.Errorf("section %q is wrong", q.Kind))
}

// TestValidateErrorsMaskValues: a Validate error that quotes a value of the
// section (a connection string written as the kind) shows it with its
// password masked, whether the decoder (first problem) or LocateAll
// (every problem) locates it.
func TestValidateErrorsMaskValues(t *testing.T) {
	doc, err := Parse("f.yaml", []byte("s:\n  kind: redis://:Sekr3t@h:6379/0\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		S quoting `yaml:"s"`
	}
	err = doc.Decode(&top)
	if err == nil || strings.Contains(err.Error(), "Sekr3t") || !strings.Contains(err.Error(), "redis://:xxxxx@h:6379/0") {
		t.Errorf("Decode: got %v, want the kind with its password masked", err)
	}
	var m map[string]Raw
	if err := doc.Decode(&m); err != nil {
		t.Fatal(err)
	}
	all := m["s"].LocateAll(quoting{Kind: "redis://:Sekr3t@h:6379/0"}.Validate())
	if strings.Contains(all.Error(), "Sekr3t") || strings.Count(all.Error(), "xxxxx") != 2 {
		t.Errorf("LocateAll: got %v, want both problems with the password masked", all)
	}
}

// TestShownLimitDocumented: package config's doc states how much of a
// value an error quotes.
func TestShownLimitDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../config/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if want := "cut to\n// " + strconv.Itoa(maxShown) + " bytes"; !strings.Contains(string(doc), want) {
		t.Errorf("config/doc.go does not say %q", want)
	}
}
