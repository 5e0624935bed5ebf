package console

import (
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/cmd/internal/untrusted"
	"github.com/levee-dev/levee/dlq/dlqops"
	"html/template"
	"time"
)

// funcs are the templates' helpers; none returns unescaped HTML.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// bar is the height in pixels (of 20) of one trend bar.
	"bar": func(n, max int) int {
		if max <= 0 || n <= 0 {
			return 0
		}
		return 1 + n*19/max
	},
	"sub":  func(a, b int) int { return a - b },
	"mul":  func(a, b int) int { return a * b },
	"join": func(xs []string) string { return untrusted.Visible(joinComma(xs)) },
	// shown makes the characters that reorder or hide text visible
	// (untrusted.Hidden); every letter's text shown outside a form field
	// goes through it.
	"shown": untrusted.Visible,
	"classes": func() []string {
		return []string{string(levee.ClassPermanent), string(levee.ClassExhausted), string(levee.ClassValidation), string(levee.ClassPanic)}
	},
	"statuses": func() []string {
		return []string{string(dlqops.StatusNew), string(dlqops.StatusReplayed), string(dlqops.StatusArchived)}
	},
}

func joinComma(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
