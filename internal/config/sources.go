package config

import (
	"sort"
	"strings"
	"sync"
)

// Setting is one value a file sets: its dotted key path, its line, its
// text after ${VAR} expansion, and the environment variables the text
// read ("NAME", or "NAME:-" when the variable was unset or empty and the
// ${NAME:-default} fallback was used).
type Setting struct {
	Path  string
	Line  int
	Value string
	Env   []string
}

// Source describes where the value came from: "file:line", with the
// variables read ("env LEVEE_RATE", "default of ${LEVEE_RATE:-...}").
func (s Setting) Source(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if s.Line > 0 {
		b.WriteString(":")
		b.WriteString(itoa(s.Line))
	}
	for _, e := range s.Env {
		if name, ok := strings.CutSuffix(e, ":-"); ok {
			b.WriteString(", default of ${" + name + ":-...}")
		} else {
			b.WriteString(", env " + e)
		}
	}
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Sources records every scalar a Document's sections decode, by key path.
// Safe for concurrent use: sections may be decoded again while stacks are
// built.
type Sources struct {
	mu     sync.Mutex
	byPath map[string]Setting // guarded by mu
}

func (s *Sources) record(st Setting) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byPath == nil {
		s.byPath = map[string]Setting{}
	}
	s.byPath[st.Path] = st
}

// Settings returns every value recorded so far, sorted by line and path.
func (s *Sources) Settings() []Setting {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Setting, 0, len(s.byPath))
	for _, st := range s.byPath {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// Lookup returns the setting at path, if the file sets it.
func (s *Sources) Lookup(path string) (Setting, bool) {
	if s == nil {
		return Setting{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byPath[path]
	return st, ok
}
