package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/levee-dev/levee/cmd/internal/untrusted"
)

// termSafe makes untrusted text (a letter's payload, metadata, error,
// topic, handler, group key; an error message) safe to print on a
// terminal: C0 and C1 control characters (ESC included), DEL, invalid
// UTF-8 and the Unicode bidirectional and line-breaking controls become
// visible escapes (\x1b, \u202e), so a letter cannot move the cursor,
// recolour, retitle or reorder the operator's terminal. keepNewlines
// keeps '\n' for output that is multi-line by design (a payload);
// everywhere else it becomes \n too.
func termSafe(s string, keepNewlines bool) string {
	if !needsEscape(s, keepNewlines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`) // a tab would break the table columns
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case untrusted.Hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string, keepNewlines bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && !(r == '\n' && keepNewlines)) || r == 0x7f || untrusted.Hidden(r) {
			return true
		}
		i += size
	}
	return false
}

// jsonSafe escapes, inside an encoding/json output, the characters
// encoding/json leaves raw but a terminal acts on: DEL, C1 controls and
// bidi controls (it already escapes C0 controls, U+2028 and U+2029, and
// replaces invalid UTF-8). They can only occur inside JSON strings, where
// \uXXXX is the same character, so the document decodes unchanged.
func jsonSafe(data []byte) []byte {
	if !bytes.ContainsFunc(data, func(r rune) bool { return r == 0x7f || untrusted.Hidden(r) }) {
		return data
	}
	var b bytes.Buffer
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == 0x7f || untrusted.Hidden(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.Write(data[i : i+size])
		}
		i += size
	}
	return b.Bytes()
}
