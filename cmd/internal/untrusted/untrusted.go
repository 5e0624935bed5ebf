package untrusted

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Hidden reports C1 controls (U+0080..U+009F, which some terminals take
// as CSI and OSC), the bidirectional controls (the Trojan Source
// characters, which reorder the text around them) and the line and
// paragraph separators.
func Hidden(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c || r == 0x200e || r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE RLE PDF LRO RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI RLI FSI PDI
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}

// Visible returns s with each Hidden character written as its escape
// (\u202e); the rest of s, invalid UTF-8 included, stays as it is.
func Visible(s string) string {
	if !strings.ContainsFunc(s, Hidden) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if Hidden(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.WriteString(s[i : i+size]) // invalid UTF-8 stays as it is
		}
		i += size
	}
	return b.String()
}
