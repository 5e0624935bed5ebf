// Package trunc bounds text for metadata, stores and logs: the dlq writes
// the bounded error of a dead letter with it, dlq/dlqops the bounded
// fields and metadata values of a stored letter, so both cut the same
// way, and the dlq and dedup the values from a message they log (Log).
package trunc

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis marks a cut.
const Ellipsis = "…"

// String cuts s to at most limit bytes at a UTF-8 boundary, marking the cut
// with Ellipsis. Invalid UTF-8 is replaced (U+FFFD) so metadata stays valid
// text. It never panics; a limit below len(Ellipsis) gives Ellipsis alone
// for a string that needs a cut.
func String(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := limit - len(Ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + Ellipsis
}
