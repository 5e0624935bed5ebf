package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LookupEnv looks up an environment variable; os.LookupEnv fits.
type LookupEnv func(string) (string, bool)

// Document is a parsed configuration file.
type Document struct {
	File string
	Root *yaml.Node // the top-level mapping (nil for an empty file)
	// Sources holds every value decoded from the document so far.
	Sources *Sources
	env     LookupEnv
}

// Load reads and parses path, expanding variables from the process
// environment.
func Load(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return Parse(path, data, os.LookupEnv)
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse parses data as the content of file. env may be nil for no variables.
func Parse(file string, data []byte, env LookupEnv) (*Document, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &Document{File: file, env: env, Sources: &Sources{}}, nil
		}
		// yaml.v3 reports a syntax error as a plain error whose text holds
		// the line ("yaml: line 3: ..."); it has no typed form to read it
		// from, so the line is parsed out of the text. Type errors are
		// *yaml.TypeError and do not reach here (decoding into a Node).
		line := 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = yamlLine.ReplaceAllString(msg, "")
		msg = strings.TrimLeft(msg, ": ")
		return nil, &Error{File: file, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)}
	}
	doc := &Document{File: file, env: env, Sources: &Sources{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		n := root.Content[0]
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return doc, nil
		}
		if n.Kind != yaml.MappingNode {
			return nil, &Error{File: file, Line: n.Line, Err: errors.New("the top level must be a mapping of keys")}
		}
		doc.Root = n
	}
	return doc, nil
}

// Decode decodes the whole document into v (a pointer to a struct).
func (d *Document) Decode(v any) error {
	return d.Raw().Decode(v)
}

// Raw returns the document's root as a Raw section.
func (d *Document) Raw() Raw {
	return Raw{File: d.File, Node: d.Root, env: d.env, src: d.Sources}
}

// Raw is a section kept undecoded, with what is needed to decode it later
// with located errors. The zero Raw is an absent section.
type Raw struct {
	File string
	Path string
	Node *yaml.Node
	// KeyLine is the line of the key that introduced the section, when
	// known; errors about the section as a whole point there.
	KeyLine int
	env     LookupEnv
	src     *Sources
}

// IsZero reports whether the section was absent.
func (r Raw) IsZero() bool { return r.Node == nil }

// Line returns the section's line, or 0 when absent.
func (r Raw) Line() int {
	if r.KeyLine > 0 {
		return r.KeyLine
	}
	if r.Node == nil {
		return 0
	}
	return r.Node.Line
}

// Decode decodes the section into v, a non-nil pointer. An absent section
// leaves v unchanged. If v (after decoding) has a method Validate() error,
// it is called and its error located at the section or, for a
// *FieldError, at the named key.
func (r Raw) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Decode needs a non-nil pointer, got %T", ErrInvalidConfig, v)
	}
	if r.Node == nil {
		return nil
	}
	env := r.env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: r.File, env: env, src: r.src}
	d.note(d.value(r.Node, r.Path, rv.Elem(), ""))
	return d.result()
}

// Errorf returns an error located at the section.
func (r Raw) Errorf(format string, args ...any) error {
	return &Error{File: r.File, Line: r.Line(), Path: r.Path, Err: fmt.Errorf(format, args...)}
}
