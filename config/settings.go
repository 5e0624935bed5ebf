package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/levee-dev/levee/internal/redact"
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
// resources (schedulers, breakers) and store, in file order: the keys the
// file sets, with their line and variables, and the keys it leaves out,
// with their defaults (the `default` struct tag of the concern's section
// type). The transport section belongs to the adapters: pass its decoded
// value to SectionSettings.
func (c *Config) Settings() []Setting {
	var out []Setting
	for _, name := range sortedKeys(c.shared) {
		kind, ok := sharedKinds()[name]
		if !ok {
			continue
		}
		for _, entry := range sortedKeys(c.shared[name]) {
			v, err := kind.decode(c.shared[name][entry])
			if err == nil {
				out = append(out, c.SectionSettings(name+"."+entry, v, sectionDefaults()[name])...)
			}
		}
	}
	if c.hasStore {
		out = append(out, c.SectionSettings("store", c.store, sectionDefaults()["store"])...)
	}
	for _, name := range c.HandlerNames() {
		for _, p := range c.handlers[name].parts {
			out = append(out, c.SectionSettings("handlers."+name+"."+p.sec.Key, p.value, sectionDefaults()[p.sec.Key])...)
		}
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
	w := walker{c: c, root: path, defaults: defaults, out: &out}
	w.walk(path, reflect.ValueOf(v))
	return out
}

type walker struct {
	c        *Config
	root     string
	defaults map[string]string
	out      *[]Setting
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
	*w.out = append(*w.out, w.c.leaf(path, v, def))
}

func (c *Config) leaf(path string, v reflect.Value, def string) Setting {
	if s, ok := c.sources.Lookup(path); ok {
		return Setting{Path: path, Value: hide(path, s.Value), Source: s.Source(c.file)}
	}
	// A list or map is recorded element by element.
	if v.Kind() == reflect.Slice || v.Kind() == reflect.Map {
		var vals, srcs []string
		for _, s := range c.sources.Settings() {
			if strings.HasPrefix(s.Path, path+"[") || strings.HasPrefix(s.Path, path+".") {
				vals = append(vals, strings.TrimPrefix(s.Path, path)+"="+hide(s.Path, s.Value))
				srcs = append(srcs, s.Source(c.file))
			}
		}
		if len(vals) > 0 {
			return Setting{Path: path, Value: strings.Join(vals, " "), Source: srcs[0]}
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
