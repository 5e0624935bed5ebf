package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// mergeKeys refuses a key that is not a plain name (plainKey) and
// applies YAML's merge keys (`<<: *anchor`, `<<: [*a, *b]`) in
// every mapping under n, in place: a mapping gets the keys of the merged
// mappings it does not set itself (the first merged mapping wins over a
// later one), and the `<<` key goes. yaml.v3 applies them only when it
// decodes into Go values; this package walks the nodes, where `<<` would
// be an unknown key. A merged key keeps its node, so its errors and
// sources name the line it is written on. done marks the mappings already
// merged (an anchor is merged once, before what merges it). path names
// the mapping in errors.
func mergeKeys(file string, n *yaml.Node, path string, done map[*yaml.Node]bool) error {
	if n == nil || done[n] {
		return nil
	}
	done[n] = true
	if n.Kind == yaml.AliasNode {
		return mergeKeys(file, n.Alias, path, done)
	}
	var errs []error
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			errs = append(errs, mergeKeys(file, c, path, done))
		}
		return errors.Join(errs...)
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var own, merged []*yaml.Node
	var sources []*yaml.Node
	hasMerge := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := plainKey(file, k, path); err != nil {
			errs = append(errs, err)
			continue
		}
		if k.Tag == "!!merge" {
			hasMerge = true
			srcs, err := mergeSources(file, k, v, join(path, k.Value))
			errs = append(errs, err)
			sources = append(sources, srcs...)
			continue
		}
		own = append(own, k, v)
		errs = append(errs, mergeKeys(file, v, join(path, k.Value), done))
	}
	if !hasMerge {
		return errors.Join(errs...)
	}
	set := map[string]bool{}
	for i := 0; i < len(own); i += 2 {
		set[own[i].Value] = true
	}
	for _, src := range sources {
		errs = append(errs, mergeKeys(file, src, path, done))
		for i := 0; i+1 < len(src.Content); i += 2 {
			if k := src.Content[i]; !set[k.Value] {
				set[k.Value] = true
				merged = append(merged, k, src.Content[i+1])
			}
		}
	}
	n.Content = append(own, merged...)
	return errors.Join(errs...)
}

// plainKey returns an error for a key that is not a plain name: a list,
// a mapping or null (`[a]: ...`, `? {a: 1}`, `~: ...`), which would name a
// handler "" or "~", a name with a variable (never expanded in a key), or
// one with a control character (a line break, an escape). A key that reads as a number or a boolean is its
// text.
func plainKey(file string, k *yaml.Node, path string) error {
	what := ""
	switch k := deref(k); {
	case k.Kind == yaml.SequenceNode:
		what = "a list"
	case k.Kind == yaml.MappingNode:
		what = "a mapping"
	case k.Kind == yaml.ScalarNode && k.Tag == "!!null":
		what = "null"
	case strings.Contains(k.Value, "${"):
		what = "one with a variable (" + shown(k.Value) + "): variables are expanded in values only"
	case strings.IndexFunc(k.Value, unicode.IsControl) >= 0:
		// It would forge lines in a report (levee config check).
		what = "one with control characters (" + shown(k.Value) + ")"
	default:
		return nil
	}
	return &Error{File: file, Line: k.Line, Path: path, Err: fmt.Errorf("a key must be a plain name, not %s", what)}
}

// mergeSources returns the mappings a merge key's value v names: a
// mapping (usually an alias of one) or a list of them.
func mergeSources(file string, k, v *yaml.Node, path string) ([]*yaml.Node, error) {
	items := []*yaml.Node{v}
	if deref(v).Kind == yaml.SequenceNode {
		items = deref(v).Content
	}
	var out []*yaml.Node
	for _, it := range items {
		m := deref(it)
		if m.Kind != yaml.MappingNode {
			return nil, &Error{File: file, Line: k.Line, Path: path,
				Err: errors.New("a merge key takes a mapping (an alias of one, *name) or a list of them")}
		}
		out = append(out, m)
	}
	return out, nil
}

// deref follows an alias to its anchor.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
