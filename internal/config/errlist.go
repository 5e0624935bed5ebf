package config

import (
	"cmp"
	"errors"
	"slices"
	"strings"
)

// Errors is every problem found in one file, sorted by line: decoding and
// validation do not stop at the first. It matches ErrInvalidConfig and
// levee.ErrInvalidConfig through its elements (errors.Is walks Unwrap).
type Errors []error

// Error returns one problem per line.
func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems.
func (e Errors) Unwrap() []error { return e }

// Join returns nil for no error, the error itself for one, and Errors
// (flattened, sorted by file and line, duplicates dropped) for several.
func Join(errs ...error) error {
	var flat Errors
	seen := map[string]bool{}
	var add func(error)
	add = func(err error) {
		if err == nil {
			return
		}
		if list, ok := err.(Errors); ok {
			for _, e := range list {
				add(e)
			}
			return
		}
		if seen[err.Error()] {
			return
		}
		seen[err.Error()] = true
		flat = append(flat, err)
	}
	for _, err := range errs {
		add(err)
	}
	switch len(flat) {
	case 0:
		return nil
	case 1:
		return flat[0]
	}
	slices.SortStableFunc(flat, func(a, b error) int {
		ea, eb := locate(a), locate(b)
		if c := cmp.Compare(ea.File, eb.File); c != 0 {
			return c
		}
		return cmp.Compare(ea.Line, eb.Line)
	})
	return flat
}

func locate(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{}
}

// Suggest returns the entry of known closest to name when it is close
// enough to be a likely misspelling (at most a third of its letters
// differ, at least one edit allowed, never a whole-word replacement),
// or "".
//
// Written here rather than imported: the edit distance is ~20 lines and
// the core module keeps its dependency list short (TestCoreModuleGraph).
func Suggest(name string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		d := distance(strings.ToLower(name), strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := max(1, len(name)/3)
	if bestD < 0 || bestD > limit || bestD >= len([]rune(name)) || best == name {
		return ""
	}
	return best
}

// DidYouMean returns `; did you mean "x"?` for Suggest's answer, or "".
func DidYouMean(name string, known []string) string {
	if s := Suggest(name, known); s != "" {
		return `; did you mean "` + s + `"?`
	}
	return ""
}

// distance is the optimal string alignment distance between a and b
// (Levenshtein with adjacent transpositions counting as one edit).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	rows := make([][]int, len(ra)+1)
	for i := range rows {
		rows[i] = make([]int, len(rb)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(ra)][len(rb)]
}
