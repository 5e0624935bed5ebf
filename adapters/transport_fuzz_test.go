package adapters_test

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/testkit"
)

// transportPaths lists every key of the transport section (from the yaml
// tags of adapters.TransportConfig and its sub-sections), the sections
// themselves, and a key that does not exist.
func transportPaths() []string {
	out := []string{"transport", "transport.nope", "transport.amqp.nope"}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		out = append(out, prefix)
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" && t.Field(i).IsExported() {
				walk(prefix+"."+name, t.Field(i).Type)
			}
		}
	}
	walk("transport", reflect.TypeFor[adapters.TransportConfig]())
	slices.Sort(out)
	return slices.Compact(out)
}

// transportYAML builds a transport section from picks: each pair of bytes
// sets one key (the first byte) to one value (the second: a hostile
// value, or with its high bit set one line of raw). Keys are written in
// the order picked, nested by path.
func transportYAML(paths []string, picks []byte, raw string) string {
	lines := strings.Split(raw, "\n")
	type entry struct{ path, value string }
	var set []entry
	for i := 0; i+1 < len(picks) && i < 48; i += 2 {
		v := testkit.HostileYAMLValues[int(picks[i+1])%len(testkit.HostileYAMLValues)]
		if picks[i+1]&0x80 != 0 {
			v = lines[int(picks[i+1]&0x7f)%len(lines)]
		}
		p := paths[int(picks[i])%len(paths)]
		// a key set again replaces the earlier value and whatever was below it
		set = slices.DeleteFunc(set, func(e entry) bool { return e.path == p || strings.HasPrefix(e.path, p+".") })
		set = append(set, entry{p, v})
	}
	var b strings.Builder
	written := map[string]bool{}
	for _, e := range set {
		parts := strings.Split(e.path, ".")
		for i := range parts[:len(parts)-1] {
			prefix := strings.Join(parts[:i+1], ".")
			if !written[prefix] && !slices.ContainsFunc(set, func(o entry) bool { return o.path == prefix }) {
				written[prefix] = true
				b.WriteString(strings.Repeat("  ", i) + parts[i] + ":\n")
			}
		}
		b.WriteString(strings.Repeat("  ", len(parts)-1) + parts[len(parts)-1] + ": " + e.value + "\n")
	}
	return b.String()
}

var transportProblem = regexp.MustCompile(`^fuzz\.yaml:(\d+): \S`)

// FuzzTransportSection sets every key of the transport section to
// hostile values (and whatever the fuzzer writes) and reads it with
// adapters.FromConfig. Expected: a section that is wrong gets an error
// wrapping config.ErrInvalidConfig, each problem on a line that names the
// file and a line of it, with no password of a URL in it; one that is
// right validates again with New's checks; nothing panics.
func FuzzTransportSection(f *testing.F) {
	paths := transportPaths()
	for i := range paths {
		for j := range testkit.HostileYAMLValues {
			if (i*7+j)%11 == 0 {
				f.Add([]byte{byte(i), byte(j)}, "")
			}
		}
	}
	f.Add([]byte{byte(slices.Index(paths, "transport.kind")), byte(slices.Index(testkit.HostileYAMLValues, "amqp")),
		byte(slices.Index(paths, "transport.amqp.url")), 0x80}, "amqp://u:Sekr3t@[::1")
	env := func(name string) (string, bool) { return "5", name == "X" }
	f.Fuzz(func(t *testing.T, picks []byte, raw string) {
		src := transportYAML(paths, picks, raw)
		cfg, err := config.Parse("fuzz.yaml", []byte(src), env, nil)
		if err == nil {
			var tc adapters.TransportConfig
			if tc, err = adapters.FromConfig(cfg); err == nil {
				if verr := tc.Validate(); verr != nil {
					t.Fatalf("FromConfig accepted a section Validate rejects: %v\n%s", verr, src)
				}
				return
			}
		}
		if !errors.Is(err, config.ErrInvalidConfig) {
			t.Fatalf("error does not wrap config.ErrInvalidConfig: %v\n%s", err, src)
		}
		if strings.Contains(err.Error(), ":Sekr3t@") { // a URL's password, not an alias named so
			t.Fatalf("error shows a password: %v\n%s", err, src)
		}
		n := 1 + strings.Count(strings.ReplaceAll(src, "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(src, "\r\n", "\n"), "\r")
		for _, line := range strings.Split(err.Error(), "\n") {
			m := transportProblem.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("problem %q does not name the file and a line\nwhole error:\n%v\nfile:\n%s", line, err, src)
			}
			if l, _ := strconv.Atoi(m[1]); l < 1 || l > n+3 {
				t.Fatalf("problem %q names line %d of a %d-line file\n%s", line, l, n, src)
			}
		}
	})
}
