package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/levee-dev/levee/breaker"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/redact"
	"github.com/levee-dev/levee/ratelimit"
)

// Setting is one key of the file with its effective value and where that
// value comes from, as `levee config check` prints it.
type Setting struct {
	// Path is the dotted key path ("handlers.payments.dlq.retry.max_attempts").
	Path string
	// Value is the effective value as written in YAML, with credentials
	// hidden; for a default, the documented default ("5", "none").
	Value string
	// Source is "file:line", followed by ", env NAME" when a ${NAME}
	// variable supplied it (or ", default of ${NAME:-...}"), or "default"
	// when the file does not set the key.
	Source string
}

// Settings returns every setting of the file's handler sections, shared
// resources (schedulers, breakers), store, fleet and schemas (each topic's
// schema file as written), in file order: the keys the
// file sets, with their line and variables, and the keys it leaves out,
// with their defaults (the `default` struct tag of the concern's section
// type). The transport section belongs to the adapters: pass its decoded
// value to SectionSettings, as the console section's owner does.
func (c *Config) Settings() []Setting {
	var out []Setting
	idx := c.index()
	add := func(path, key string, v any) {
		w := walker{c: c, idx: idx, root: path, defaults: effectiveDefaults(key, v), zeroIsDefault: zeroIsDefault[key], out: &out}
		w.walk(path, reflect.ValueOf(v))
	}
	for _, name := range sortedKeys(c.shared) {
		kind, ok := sharedKinds()[name]
		if !ok {
			continue
		}
		for _, entry := range sortedKeys(c.shared[name]) {
			v, err := kind.decode(c.shared[name][entry])
			if err == nil {
				add(name+"."+entry, name, v)
			}
		}
	}
	if c.hasStore {
		add("store", "store", c.store)
	}
	if c.hasFleet {
		add("fleet", "fleet", c.fleet)
	}
	if c.schemas != nil {
		for _, s := range below(idx, "schemas.") {
			out = append(out, Setting{Path: s.Path, Value: s.Value, Source: s.Source(c.file)})
		}
	}
	for _, name := range c.HandlerNames() {
		for _, p := range c.handlers[name].parts {
			path := "handlers." + name + "." + p.sec.Key
			n := len(out)
			add(path, p.sec.Key, p.value)
			if bc, ok := p.value.(breaker.Config); ok && bc.Shared != "" {
				out = onlyShared(out, n, path)
			}
		}
	}
	return out
}

// onlyShared keeps, of the settings from n on, a breaker's shared key
// alone: the shared breaker's own settings (listed under breakers.NAME)
// are the ones in effect, and the defaults of the keys the handler cannot
// set beside shared would read as its breaker's policy.
func onlyShared(out []Setting, n int, path string) []Setting {
	kept := out[:n]
	for _, s := range out[n:] {
		if s.Path == path+".shared" || !strings.HasPrefix(s.Path, path+".") {
			kept = append(kept, s)
		}
	}
	return kept
}

// zeroIsDefault lists the sections where a key the file sets to its zero
// value (consecutive_failures: 0, burst: 0, key: "") means what the key's
// absence means, so that the setting prints the default in effect. In the
// others an explicit zero the decoder accepts has a meaning of its own
// (ratelimit rate: 0 is a pause), shown as written.
var zeroIsDefault = map[string]bool{"breaker": true, "breakers": true, "fleet": true, "dedup": true}

// effectiveDefaults is sectionDefaults()[key], with the entries that
// depend on the section's other keys resolved for v: a breaker trips
// after 5 consecutive failures only when no other trip policy is set.
func effectiveDefaults(key string, v any) map[string]string {
	defs := sectionDefaults()[key]
	if rc, ok := v.(ratelimit.Config); ok && rc.Adaptive != nil {
		return adaptiveDefaults(defs, rc.Adaptive)
	}
	bc, ok := v.(breaker.Config)
	if !ok || bc.Shared != "" {
		return defs
	}
	out := make(map[string]string, len(defs))
	for k, d := range defs {
		out[k] = d
	}
	if n := bc.Effective().ConsecutiveFailures; n > 0 {
		out["consecutive_failures"] = itoa(n)
	} else {
		out["consecutive_failures"] = "off (another trip policy is set)"
	}
	return out
}

// adaptiveDefaults resolves defs for an adaptive ratelimit section: the
// rate starts at adaptive.max, and the latency target is automatic unless
// ignore_latency turns latency off.
func adaptiveDefaults(defs map[string]string, a *ratelimit.AdaptiveConfig) map[string]string {
	out := make(map[string]string, len(defs))
	for k, d := range defs {
		out[k] = d
	}
	out["rate"] = "adaptive.max (" + iconfig.FormatRate(a.Max) + ")"
	if a.IgnoreLatency {
		out["adaptive.target_latency"] = "off (ignore_latency)"
	}
	return out
}

// SectionSettings returns the settings of a section value decoded from
// this file at path (for example the transport section, decoded with
// Transport().Decode): one per leaf key of its yaml-tagged struct, set or
// defaulted. A section that is a single value (timeout: 2s) is one setting.
// defaults gives the meaning of each key the file leaves out, by its path
// inside the section ("retry.max_attempts"); a key without one prints as
// "unset".
func (c *Config) SectionSettings(path string, v any, defaults map[string]string) []Setting {
	var out []Setting
	w := walker{c: c, idx: c.index(), root: path, defaults: defaults, out: &out}
	w.walk(path, reflect.ValueOf(v))
	return out
}

// index is every value the file sets, sorted by path, so that a list's or
// a map's elements are found with a binary search: read once per call of
// Settings, not once per leaf.
func (c *Config) index() []iconfig.Setting {
	all := c.sources.Settings()
	sort.SliceStable(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	return all
}

// below returns the settings of idx whose path starts with prefix.
func below(idx []iconfig.Setting, prefix string) []iconfig.Setting {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].Path >= prefix })
	j := i
	for j < len(idx) && strings.HasPrefix(idx[j].Path, prefix) {
		j++
	}
	return idx[i:j]
}

type walker struct {
	c        *Config
	idx      []iconfig.Setting
	root     string
	defaults map[string]string
	// zeroIsDefault: a key set to its zero value prints its default.
	zeroIsDefault bool
	out           *[]Setting
}

// walk appends the settings below path. It descends into structs and
// pointers to structs; other values (scalars, lists, maps) are leaves,
// shown as the file wrote them.
func (w walker) walk(path string, v reflect.Value) {
	for v.IsValid() && v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
		if v.IsNil() {
			// An optional subsection the file leaves out (drain,
			// per_key, another transport's section): nothing to show.
			return
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return
	}
	if v.Kind() == reflect.Struct && v.Type().NumField() > 0 && hasYAMLFields(v.Type()) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			w.walk(path+"."+name, v.Field(i))
		}
		return
	}
	def := w.defaults[strings.TrimPrefix(strings.TrimPrefix(path, w.root), ".")]
	*w.out = append(*w.out, w.leaf(path, v, def))
}

// leaf is the setting at path, whose decoded value is v: the file's text
// when the file sets it (or the default in effect, for a zero that means
// the default), its elements for a list or map, else the default def.
func (w walker) leaf(path string, v reflect.Value, def string) Setting {
	c := w.c
	if s, ok := c.sources.Lookup(path); ok {
		value := hide(path, s.Value)
		if w.zeroIsDefault && def != "" && v.IsValid() && v.IsZero() && v.Kind() != reflect.Pointer {
			value = def + " (" + strconv.Quote(s.Value) + " means the default)"
		}
		return Setting{Path: path, Value: value, Source: s.Source(c.file)}
	}
	// A list or map is recorded element by element.
	if v.Kind() == reflect.Slice || v.Kind() == reflect.Map {
		elems := append(slices.Clone(below(w.idx, path+"[")), below(w.idx, path+".")...)
		sort.SliceStable(elems, func(i, j int) bool {
			if elems[i].Line != elems[j].Line {
				return elems[i].Line < elems[j].Line
			}
			return elems[i].Path < elems[j].Path
		})
		var vals []string
		for _, s := range elems {
			vals = append(vals, strings.TrimPrefix(s.Path, path)+"="+hide(s.Path, s.Value))
		}
		if len(vals) > 0 {
			return Setting{Path: path, Value: strings.Join(vals, " "), Source: elems[0].Source(c.file)}
		}
	}
	if def == "" {
		def = "unset"
		if v.IsValid() && !v.IsZero() {
			def = fmt.Sprint(v.Interface())
		}
	}
	return Setting{Path: path, Value: def, Source: "default"}
}

func hasYAMLFields(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") != "" {
			return true
		}
	}
	return false
}

// hide keeps credentials out of the output: URLs lose their password,
// and a key named like a secret shows only that it is set.
func hide(path, value string) string {
	last := strings.ToLower(path[strings.LastIndexByte(path, '.')+1:])
	if strings.Contains(last, "password") || strings.Contains(last, "secret") || strings.Contains(last, "token") {
		if value == "" {
			return ""
		}
		return "xxxxx"
	}
	return redact.URL(value)
}
