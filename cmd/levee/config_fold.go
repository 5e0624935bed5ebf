package main

import (
	"fmt"
	"regexp"
	"strings"
)

// handlerWarning splits a handler's warning: file, line, handler name,
// the key under the handler, and the text.
var handlerWarning = regexp.MustCompile(`^(.*):(\d+): handlers\.([^.:\s]+)\.([^:\s]+): (.*)$`)

// foldWarnings folds the warnings several handlers get word for word
// (one key, one text: a breaker that trips at the dlq's max attempts on
// every handler left at the defaults) into the first one and a line
// naming the others with their lines, so a file of 40 handlers gives a
// few warnings a reader can act on rather than 40 copies of one. Other
// warnings and the order (the first of each fold) are kept.
func foldWarnings(ws []string) []string {
	type fold struct {
		first  int      // index in out
		others []string // "name (line N)"
	}
	var out []string
	folds := map[string]*fold{}
	var order []*fold
	for _, w := range ws {
		m := handlerWarning.FindStringSubmatch(w)
		if m == nil {
			out = append(out, w)
			continue
		}
		key := m[1] + "\x00" + m[4] + "\x00" + m[5]
		if f, ok := folds[key]; ok {
			f.others = append(f.others, fmt.Sprintf("%s (line %s)", m[3], m[2]))
			continue
		}
		f := &fold{first: len(out)}
		folds[key] = f
		order = append(order, f)
		out = append(out, w)
	}
	for _, f := range order {
		if n := len(f.others); n > 0 {
			noun := "handlers"
			if n == 1 {
				noun = "handler"
			}
			out[f.first] += fmt.Sprintf("\n  the same for %d more %s: %s", n, noun, strings.Join(f.others, ", "))
		}
	}
	return out
}
