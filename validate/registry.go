package validate

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/levee-dev/levee"
)

// ErrInvalidMessage is wrapped by every *Error: a payload does not match the
// schema of its topic, or is not JSON.
var ErrInvalidMessage = errors.New("levee/validate: message does not match its schema")

// ErrInvalidConfig is wrapped by the errors Compile, Load and Config.Validate
// return for a schema that cannot be read or compiled. It is this
// package's invalid-config sentinel: errors.Is matches it with
// levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/validate: invalid schema")

// Registry holds one compiled JSON Schema (draft 2020-12 unless the schema
// says otherwise with $schema) per topic. Schemas are compiled once, when
// the Registry is built. A Registry is immutable and safe for concurrent
// use.
type Registry struct {
	schemas map[string]*jsonschema.Schema
}

// Compile builds a Registry from schema documents given as JSON bytes, keyed
// by topic. It returns an error wrapping ErrInvalidConfig naming the topic for
// malformed JSON or an invalid schema.
func Compile(schemas map[string][]byte) (*Registry, error) {
	c := newCompiler()
	r := &Registry{schemas: make(map[string]*jsonschema.Schema, len(schemas))}
	for _, topic := range sortedKeys(schemas) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas[topic]))
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", ErrInvalidConfig, topic, err)
		}
		loc := "mem:///levee/schemas/" + url.PathEscape(topic) + ".json"
		if err := c.AddResource(loc, doc); err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", ErrInvalidConfig, topic, err)
		}
		sch, err := c.Compile(loc)
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", ErrInvalidConfig, topic, err)
		}
		r.schemas[topic] = sch
	}
	return r, nil
}

// Load builds a Registry from schema files, keyed by topic. Relative paths
// are relative to the working directory; $ref to sibling files resolves. It
// returns an error wrapping ErrInvalidConfig naming the topic and file for a
// missing file or an invalid schema.
func Load(files map[string]string) (*Registry, error) {
	c := newCompiler()
	r := &Registry{schemas: make(map[string]*jsonschema.Schema, len(files))}
	for _, topic := range sortedKeys(files) {
		path := files[topic]
		if strings.TrimSpace(path) == "" {
			return nil, fmt.Errorf("%w: topic %q: empty schema path", ErrInvalidConfig, topic)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %v", ErrInvalidConfig, topic, err)
		}
		sch, err := c.Compile(abs)
		if err != nil {
			return nil, fmt.Errorf("%w: topic %q: %q: %v", ErrInvalidConfig, topic, path, err)
		}
		r.schemas[topic] = sch
	}
	return r, nil
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Topics returns the topics that have a schema, sorted.
func (r *Registry) Topics() []string { return sortedKeys(r.schemas) }

// Has reports whether topic has a schema.
func (r *Registry) Has(topic string) bool {
	_, ok := r.schemas[topic]
	return ok
}

// Validate checks payload against the schema of topic. It returns nil when
// the payload is valid or the topic has no schema, and a *Error (class
// validation) listing the violations otherwise; a payload that is not a
// single JSON value (empty, truncated, trailing garbage) is a violation at
// the document root, and a number past MaxNumberLen or MaxNumberExponent
// one at its path.
func (r *Registry) Validate(topic string, payload []byte) error {
	sch, ok := r.schemas[topic]
	if !ok {
		return nil
	}
	return check(sch, topic, payload)
}

func check(sch *jsonschema.Schema, topic string, payload []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return &Error{Topic: topic, Violations: []Violation{{Message: "malformed JSON: " + err.Error()}}}
	}
	if bad := numberViolation(inst); bad != nil {
		return &Error{Topic: topic, Violations: []Violation{*bad}}
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &Error{Topic: topic, Violations: []Violation{{Message: err.Error()}}}
	}
	return &Error{Topic: topic, Violations: violations(ve)}
}

// violations flattens a validation error into its leaf failures.
func violations(ve *jsonschema.ValidationError) []Violation {
	out := ve.BasicOutput()
	var list []Violation
	for _, u := range out.Errors {
		if u.Error == nil {
			continue
		}
		list = append(list, Violation{InstancePath: u.InstanceLocation, KeywordPath: u.KeywordLocation, Message: u.Error.String()})
	}
	if len(list) == 0 {
		msg := ""
		if out.Error != nil {
			msg = out.Error.String()
		}
		list = append(list, Violation{InstancePath: out.InstanceLocation, KeywordPath: out.KeywordLocation, Message: msg})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].InstancePath < list[j].InstancePath })
	return list
}
