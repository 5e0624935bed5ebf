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
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, tooLarge(path, fi.Size())
	}
	// Read at most one byte more than a file may hold: a path that is not
	// a regular file (a device, a pipe) may never end.
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return Parse(path, data, os.LookupEnv)
}

// MaxFileSize bounds a file's size, in bytes (4 MiB): a levee.yaml is a
// few KiB, and a file given by mistake (a log, a dump) would take seconds
// and gigabytes to parse before being refused (50 MB: 42s, 2.3 GB).
const MaxFileSize = 4 << 20

func tooLarge(file string, size int64) error {
	what := fmt.Sprintf("%.1f MiB", float64(size)/(1<<20))
	if size == MaxFileSize+1 { // read no further
		what = fmt.Sprintf("over %d MiB", MaxFileSize>>20)
	}
	return &Error{File: file, Err: fmt.Errorf("the file is %s; a levee.yaml is at most %d MiB: is it the right file?", what, MaxFileSize>>20)}
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse parses data as the content of file. env may be nil for no variables.
func Parse(file string, data []byte, env LookupEnv) (*Document, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(file, int64(len(data)))
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &Document{File: file, env: env, Sources: &Sources{}}, nil
		}
		return nil, syntaxError(file, data, err)
	}
	// A second document (after ---) would be ignored: the file is one.
	// Empty ones (a trailing ---) are let be.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		if len(extra.Content) == 1 && isNull(extra.Content[0]) || len(extra.Content) == 0 {
			continue
		}
		return nil, &Error{File: file, Line: max(extra.Content[0].Line, 1), Err: errors.New("a second YAML document (after ---): a levee.yaml is one document")}
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
		if size := expandedSize(n, map[*yaml.Node]int{}); size > MaxExpandedNodes {
			if nodes(n) > MaxExpandedNodes {
				return nil, &Error{File: file, Line: n.Line, Err: fmt.Errorf("the file holds more than %d values (keys, values and list items); a levee.yaml is far smaller: is it the right file?", MaxExpandedNodes)}
			}
			return nil, &Error{File: file, Line: n.Line, Err: fmt.Errorf("the file's aliases (*name) expand it to more than %d values; repeat less through aliases", MaxExpandedNodes)}
		}
		if err := mergeKeys(file, n, "", map[*yaml.Node]bool{}); err != nil {
			return nil, err
		}
		doc.Root = n
	}
	return doc, nil
}

// MaxExpandedNodes bounds the values a file holds once its aliases are
// expanded: every section decodes its aliases again, so a small file that
// nests aliases (a YAML bomb) would take minutes and gigabytes. A
// hand-written file is far below it.
const MaxExpandedNodes = 100_000

// expandedSize returns the number of nodes under n with every alias
// expanded, saturating just above MaxExpandedNodes; memo holds the sizes
// already known, so the walk is linear in the file.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = MaxExpandedNodes + 1 // an alias cycle saturates
	size := 1
	if n.Kind == yaml.AliasNode {
		size = expandedSize(n.Alias, memo)
	}
	for _, c := range n.Content {
		size = min(size+expandedSize(c, memo), MaxExpandedNodes+1)
	}
	memo[n] = size
	return size
}

// nodes returns the number of nodes under n as written, aliases not
// expanded.
func nodes(n *yaml.Node) int {
	size := 1
	for _, c := range n.Content {
		size += nodes(c)
	}
	return size
}

// syntaxError locates a YAML syntax error. yaml.v3 reports one as a plain
// error whose text holds a line ("yaml: line 3: ..."), with no typed form
// to read it from, and for a parser error that line is the start of the
// enclosing block, not the line at fault (a bad indent on line 4 of a
// mapping begun on line 2 says line 1); it is never after it. So the
// error is put on the first line from yaml.v3's whose prefix of the file
// fails to parse with the same message: where a reader going down the
// file meets the problem. The search looks at most maxLocateLines lines
// on; yaml.v3's line is the fallback.
func syntaxError(file string, data []byte, err error) *Error {
	msg := yamlMessage(err)
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	line = max(line, 1)
	// end is the offset just past line k.
	end, k := 0, 0
	for k < line-1 && end < len(data) {
		end = lineEnd(data, end)
		k++
	}
	for n := 0; n < maxLocateLines && end < len(data); n++ {
		end = lineEnd(data, end)
		k++
		var node yaml.Node
		if perr := yaml.NewDecoder(bytes.NewReader(data[:end])).Decode(&node); perr != nil && !errors.Is(perr, io.EOF) && yamlMessage(perr) == msg {
			line = k
			break
		}
	}
	if strings.Contains(msg, "did not find expected ',' or '}'") && strings.Contains(lineOf(data, line), "${") {
		msg += ` (a ${VAR} inside {...} must be quoted: "${VAR}")`
	}
	if l := lineOf(data, line); strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
		msg += " (a tab in the indentation: YAML indents with spaces only)"
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)}
}

// lineEnd returns the offset just past the line of data that starts at
// from (its newline included).
func lineEnd(data []byte, from int) int {
	if i := bytes.IndexByte(data[from:], '\n'); i >= 0 {
		return from + i + 1
	}
	return len(data)
}

// maxLocateLines bounds the lines syntaxError re-parses the file for.
const maxLocateLines = 200

// yamlMessage is a yaml.v3 syntax error's text without its line.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = yamlLine.ReplaceAllString(msg, "")
	return strings.TrimLeft(msg, ": ")
}

// lineOf returns line n (1-based) of data, "" when there is none.
func lineOf(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
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

// IsNull reports whether the section is present but empty (`key:`,
// `key: ~`, `key: null`).
func (r Raw) IsNull() bool {
	n := r.Node
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n != nil && isNull(n)
}

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
	return &Error{File: r.File, Line: r.Line(), Path: r.Path, Err: r.Masked(fmt.Errorf(format, args...))}
}

// Masked returns err, a problem of the section, with the credentials of
// every value in the section hidden from its message (a URL's password),
// since a problem may quote a value and a connection string may be written
// at any key. Errorf and the errors of Decode's Validate calls are masked
// already.
func (r Raw) Masked(err error) error { return masked(err, r.Node) }
