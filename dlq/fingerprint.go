package dlq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrorType returns the Go type (%T) of the innermost meaningful error in
// err's chain: it looks through fmt.Errorf wrappers and Levee's class marks
// (Permanent, WithClass), stopping at the first other type. "" for nil.
func ErrorType(err error) string {
	for err != nil {
		switch t := fmt.Sprintf("%T", err); t {
		case "*fmt.wrapError", "*dlq.classMark":
			inner := errors.Unwrap(err)
			if inner == nil {
				return t
			}
			err = inner
		case "*fmt.wrapErrors":
			if u, ok := err.(interface{ Unwrap() []error }); ok && len(u.Unwrap()) == 1 {
				err = u.Unwrap()[0]
				continue
			}
			return t
		default:
			return t
		}
	}
	return ""
}

// Fingerprint returns the grouping key of a failure: the first 16 hex digits
// of SHA-256 over errType, a NUL, and MaskVariable(msg). The same failure on
// different messages (other ids, amounts, addresses) gets the same
// fingerprint.
func Fingerprint(errType, msg string) string {
	h := sha256.New()
	h.Write([]byte(errType))
	h.Write([]byte{0})
	h.Write([]byte(MaskVariable(msg)))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// failureKeyer is implemented by errors whose message carries the values
// of the message that failed, and that say which failure they are apart
// from them (validate.Error: its topic and failing schema keywords).
type failureKeyer interface {
	FailureKey() string
}

// failureKey returns what err's fingerprint hashes: the FailureKey of the
// first error in its chain that has one, else msg (err's message). A
// producer's payload then cannot make each letter of one failure a group
// of its own.
func failureKey(err error, msg string) string {
	var fk failureKeyer
	if errors.As(err, &fk) {
		return fk.FailureKey()
	}
	return msg
}

// fingerprintAt is Fingerprint for a failure at a known frame of the
// project's code (a panic's): SHA-256 over errType, a NUL, the masked
// message, a NUL and the frame's function. Without a frame it is
// Fingerprint.
func fingerprintAt(errType, msg, fn string) string {
	if fn == "" {
		return Fingerprint(errType, msg)
	}
	h := sha256.New()
	h.Write([]byte(errType))
	h.Write([]byte{0})
	h.Write([]byte(MaskVariable(msg)))
	h.Write([]byte{0})
	h.Write([]byte(fn))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// MaskVariable replaces the variable parts of an error message: UUIDs
// become "<uuid>", hex ids (0x-prefixed, or 8+ hex digits with a digit in
// them) become "<hex>", and runs of decimal digits (with a decimal point)
// become "<n>". Letters-only words are kept.
func MaskVariable(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for i < len(s) {
		c := s[i]
		if !isAlnum(c) {
			b.WriteByte(c)
			i++
			continue
		}
		// a token: a maximal run of [0-9A-Za-z_] plus '-' for UUIDs
		j := i
		for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_') {
			j++
		}
		b.WriteString(maskToken(s[i:j]))
		i = j
	}
	return b.String()
}

func maskToken(tok string) string {
	if len(tok) == 36 && isUUID(tok) {
		return "<uuid>"
	}
	// split on '-' and '_' so "order-12345" keeps "order-"
	if strings.ContainsAny(tok, "-_") {
		var b strings.Builder
		start := 0
		for k := 0; k <= len(tok); k++ {
			if k == len(tok) || tok[k] == '-' || tok[k] == '_' {
				b.WriteString(maskWord(tok[start:k]))
				if k < len(tok) {
					b.WriteByte(tok[k])
				}
				start = k + 1
			}
		}
		return b.String()
	}
	return maskWord(tok)
}

func maskWord(w string) string {
	if w == "" {
		return w
	}
	if len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X') && allHex(w[2:]) {
		return "<hex>"
	}
	digits := 0
	for i := 0; i < len(w); i++ {
		if isDigit(w[i]) {
			digits++
		}
	}
	switch {
	case digits == 0:
		return w
	case digits == len(w):
		return "<n>"
	case len(w) >= 8 && allHex(w):
		return "<hex>"
	}
	// mixed like "v2" or "id42": mask the digit runs
	var b strings.Builder
	for i := 0; i < len(w); {
		if isDigit(w[i]) {
			for i < len(w) && isDigit(w[i]) {
				i++
			}
			b.WriteString("<n>")
			continue
		}
		b.WriteByte(w[i])
		i++
	}
	return b.String()
}

func isUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func allHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
}
