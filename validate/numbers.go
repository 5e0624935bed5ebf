package validate

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Bounds on a number in a payload, checked before the schema runs. The
// schema library compares numbers as exact big rationals: a number with an
// exponent past ±1,000,000 made it panic, and one up to there, or with a
// very long literal, cost it tens of milliseconds each (a payload of such
// numbers: an hour of CPU per megabyte). A number past either bound is a
// violation at its instance path. float64 reaches 1e±308, so no number a
// program writes comes near them.
const (
	// MaxNumberLen is the longest number literal a payload may hold, in
	// bytes.
	MaxNumberLen = 400
	// MaxNumberExponent bounds the exponent of a number literal ("1e400"):
	// beyond ±400 it is a violation.
	MaxNumberExponent = 400
)

// numberViolation returns the violation for the first number (in array
// order and member-name order) in the decoded instance v past MaxNumberLen
// or MaxNumberExponent, if any, at its instance path relative to v. The
// path is built only for a violation: a valid payload costs a walk, no
// allocation.
func numberViolation(v any) *Violation {
	switch x := v.(type) {
	case json.Number:
		if msg := numberProblem(string(x)); msg != "" {
			return &Violation{Message: msg}
		}
	case []any:
		for i, e := range x {
			if bad := numberViolation(e); bad != nil {
				bad.InstancePath = "/" + strconv.Itoa(i) + bad.InstancePath
				return bad
			}
		}
	case map[string]any:
		// The least member name with a bad number wins, so the same
		// payload always gives the same violation (and dead-letter group).
		var first *Violation
		var firstKey string
		for k, e := range x {
			if first != nil && k > firstKey {
				continue
			}
			if bad := numberViolation(e); bad != nil {
				first, firstKey = bad, k
			}
		}
		if first != nil {
			first.InstancePath = "/" + pointerEscaper.Replace(firstKey) + first.InstancePath
		}
		return first
	}
	return nil
}

// pointerEscaper escapes a member name as a JSON pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// numberProblem says what is wrong with a JSON number literal, or "".
func numberProblem(lit string) string {
	if len(lit) > MaxNumberLen {
		return "number literal of " + strconv.Itoa(len(lit)) + " bytes, over " + strconv.Itoa(MaxNumberLen)
	}
	i := strings.IndexAny(lit, "eE")
	if i < 0 {
		return ""
	}
	// The literal is valid JSON, so the exponent is an optional sign and
	// digits; one too long for an int is past the bound too.
	exp, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
	if err != nil || exp > MaxNumberExponent || exp < -MaxNumberExponent {
		return "number " + lit + ": exponent beyond ±" + strconv.Itoa(MaxNumberExponent)
	}
	return ""
}
