package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder decodes a yaml.Node into a Go value by reflection, locating
// each error at its file, line and key path.
type decoder struct {
	file string
	env  LookupEnv
	src  *Sources
	errs []error
	// used is the environment variables the last expand read.
	used []string
}

// errReported marks a subtree whose errors are already in decoder.errs:
// the caller skips its own checks (Validate) and goes on with the next key.
var errReported = errors.New("reported")

// note records err unless it is already recorded.
func (d *decoder) note(err error) {
	if err != nil && err != errReported {
		d.errs = append(d.errs, err)
	}
}

// result is every error recorded, nil when there is none.
func (d *decoder) result() error { return Join(d.errs...) }

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) error {
	return &Error{File: d.file, Line: n.Line, Path: path, Err: fmt.Errorf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	rawType      = reflect.TypeFor[Raw]()
)

type validator interface{ Validate() error }

// value decodes n into v at path. It is past 80 lines because it is one
// switch over the target's kind (Raw, duration, pointer, string, bool,
// integers, floats, slice, map, struct), each case short; the cases share
// the alias, null and env-expansion handling above them.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, kind string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if v.Type() == rawType {
		v.Set(reflect.ValueOf(Raw{File: d.file, Path: path, Node: n, env: d.env, src: d.src}))
		return nil
	}
	tag := kind
	kind, nonzero := parseTag(kind)
	if isNull(n) {
		if nonzero {
			return d.errf(n, path, "is empty; set a value or remove the key for the default")
		}
		// An explicit null (or empty value) keeps the default; a struct
		// is then checked as `{}` would be, so `priority:` is the same
		// error as `priority: {}`, not a section that skipped Validate.
		if v.Kind() == reflect.Struct && v.CanAddr() {
			return d.validate(n, path, v.Addr())
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		// The pointee takes the whole tag: a nonzero pointer field
		// (batch max_hold) rejects an explicit zero as a plain one does.
		if err := d.value(n, path, v.Elem(), tag); err != nil {
			return err
		}
		return d.validate(n, path, v)
	case reflect.Struct:
		if err := d.structure(n, path, v); err != nil {
			return err
		}
		if v.CanAddr() {
			return d.validate(n, path, v.Addr())
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errf(n, path, "expected a mapping of keys, got %s", describe(n))
		}
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%w: map key type %s unsupported", ErrInvalidConfig, v.Type().Key())
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		failed := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				failed = true
				d.note(d.errf(k, join(path, k.Value), "duplicate key"))
				continue
			}
			seen[k.Value] = true
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := d.value(val, join(path, k.Value), elem, kind); err != nil {
				failed = true
				d.note(err)
				continue
			}
			setKeyLine(elem, k.Line)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
		if failed {
			return errReported
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			// A single scalar is accepted as a one-element list.
			if n.Kind == yaml.ScalarNode {
				elem := reflect.New(v.Type().Elem()).Elem()
				if err := d.value(n, path, elem, kind); err != nil {
					return err
				}
				v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), elem))
				return nil
			}
			return d.errf(n, path, "expected a list, got %s", describe(n))
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		failed := false
		for i, c := range n.Content {
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := d.value(c, fmt.Sprintf("%s[%d]", path, i), elem, kind); err != nil {
				failed = true
				d.note(err)
				continue
			}
			s = reflect.Append(s, elem)
		}
		v.Set(s)
		if failed {
			return errReported
		}
		return nil
	}
	// Scalars.
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, path, "expected a single value, got %s", describe(n))
	}
	d.used = d.used[:0]
	s, err := d.expand(n.Value)
	if err != nil {
		return d.errf(n, path, "%v", err)
	}
	d.src.record(Setting{Path: path, Line: n.Line, Value: s, Env: slices.Clone(d.used)})
	if err := d.scalar(n, path, v, kind, s); err != nil {
		return err
	}
	if nonzero && v.IsZero() {
		return d.errf(n, path, "%s is not allowed: it must be set to a non-zero value (remove the key for the default)", shown(s))
	}
	return nil
}

// scalar decodes the expanded text s into v.
func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value, kind, s string) error {
	if v.Type() == durationType {
		dur, err := ParseDuration(s)
		if err != nil {
			return d.errf(n, path, "%v", err)
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return d.errf(n, path, "%s is not a boolean (use true or false)", shown(s))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return d.errf(n, path, "%s is not an integer", shown(s))
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return d.errf(n, path, "%s is not a non-negative integer", shown(s))
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		var err error
		switch kind {
		case "rate":
			f, err = ParseRate(s)
		case "percent":
			f, err = ParsePercent(s)
		default:
			f, err = parseNumber(s)
		}
		if err != nil {
			return d.errf(n, path, "%v", err)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("%w: %s: unsupported field type %s", ErrInvalidConfig, path, v.Type())
	}
	return nil
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "expected a mapping of keys, got %s", describe(n))
	}
	t := v.Type()
	type field struct {
		index int
		kind  string
	}
	fields := map[string]field{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = field{index: i, kind: f.Tag.Get("levee")}
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	failed := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		f, ok := fields[k.Value]
		var err error
		switch {
		case !ok:
			err = UnknownKey(d.file, k.Line, p, k.Value, names)
		case seen[k.Value]:
			err = d.errf(k, p, "duplicate key")
		default:
			seen[k.Value] = true
			err = d.value(val, p, v.Field(f.index), f.kind)
			setKeyLine(v.Field(f.index), k.Line)
		}
		if err != nil {
			failed = true
			d.note(err)
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// UnknownKey is the error for a key that is not one of known (sorted),
// with a suggestion when the key looks like a misspelling of one.
func UnknownKey(file string, line int, path, key string, known []string) error {
	return &Error{File: file, Line: line, Path: path,
		Err: fmt.Errorf("unknown key %q%s (known keys: %s)", key, DidYouMean(key, known), strings.Join(known, ", "))}
}

// parseTag splits a levee struct tag ("rate,nonzero") into the value kind
// and whether an explicit zero or empty value is an error (for a field
// whose zero means "the default" in YAML while the option rejects zero).
func parseTag(tag string) (kind string, nonzero bool) {
	kind, rest, _ := strings.Cut(tag, ",")
	if kind == "nonzero" {
		return "", true
	}
	return kind, rest == "nonzero"
}

// parseNumber parses a plain number or a percentage ("50%" is 0.5).
func parseNumber(s string) (float64, error) {
	t := strings.TrimSpace(s)
	p, pct := strings.CutSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a number (use e.g. 0.5 or 50%%)", shown(s))
	}
	if pct {
		f /= 100
	}
	return f, nil
}

// setKeyLine records the key's line on a decoded Raw.
func setKeyLine(v reflect.Value, line int) {
	if v.Type() == rawType && v.CanSet() {
		r := v.Interface().(Raw)
		r.KeyLine = line
		v.Set(reflect.ValueOf(r))
	}
}

// validate calls Validate on ptr if it has one, and locates its error.
func (d *decoder) validate(n *yaml.Node, path string, ptr reflect.Value) error {
	val, ok := ptr.Interface().(validator)
	if !ok {
		return nil
	}
	err := val.Validate()
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		at := find(n, fe.Key)
		if at == nil {
			at = n
		}
		return &Error{File: d.file, Line: at.Line, Path: join(path, fe.Key), Err: masked(fe.Err, n), validated: &path}
	}
	return &Error{File: d.file, Line: n.Line, Path: path, Err: masked(err, n), validated: &path}
}

// find returns the value node at a dotted key path below n, or nil.
func find(n *yaml.Node, key string) *yaml.Node {
	for _, part := range strings.Split(key, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && (n.Value == "" || n.Value == "~" || n.Value == "null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return shown(n.Value)
	}
	return "something else"
}
