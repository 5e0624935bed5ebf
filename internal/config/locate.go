package config

import (
	"errors"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/levee-dev/levee/internal/redact"
)

// LocateAll locates every problem of err, a section's Validate error, in
// the section r: each *FieldError err holds (err itself, or the elements
// of a list joined with errors.Join) at its key's line and path, any other
// problem at the section. It returns nil for nil, the one located error
// for one problem and Errors for several.
//
// Raw.Decode locates only the first *FieldError of a Validate error;
// callers that decode a section whose Validate reports several problems
// use it to report them all (see LocatedFirst).
func (r Raw) LocateAll(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if list, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range list.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, r.locate(e, true))
	}
	walk(err)
	return Join(out...)
}

// LocatedFirst returns the error Raw.Decode returns for err, a Validate
// error of the section r: its first *FieldError at its key, else err at
// the section.
func (r Raw) LocatedFirst(err error) error {
	if err == nil {
		return nil
	}
	return r.locate(err, false)
}

// locate locates err's first *FieldError, or err at the section, as the
// decoder's validate does; with nearest, a key the file leaves out (a
// required one) is put at the line of its nearest parent the file has
// instead of the section's.
func (r Raw) locate(err error, nearest bool) error {
	n := r.Node
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		if at := find(n, fe.Key); at != nil {
			line = at.Line
		} else if nearest {
			for key := fe.Key; strings.Contains(key, "."); {
				key = key[:strings.LastIndexByte(key, '.')]
				if at := find(n, key); at != nil {
					line = at.Line
					break
				}
			}
		}
		return &Error{File: r.File, Line: line, Path: join(r.Path, fe.Key), Err: masked(fe.Err, n)}
	}
	return &Error{File: r.File, Line: line, Path: r.Path, Err: masked(err, n)}
}

// masked returns err, a Validate error of the section at n, with the
// credentials of every value under n hidden: a Validate method may quote
// a value, and a connection string may be written at any key (a URL as a
// transport's kind).
func masked(err error, n *yaml.Node) error {
	var values []string
	seen := map[*yaml.Node]bool{}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode && n.Value != "" {
			values = append(values, n.Value)
		}
		walk(n.Alias)
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return redact.Error(err, values...)
}
