package config

import (
	"fmt"
	"strings"

	"github.com/levee-dev/levee/internal/redact"
)

// This file expands ${VAR} and ${VAR:-default} in configuration values.

// expand replaces ${VAR} and ${VAR:-default}; $$ is a literal $.
func (d *decoder) expand(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", redact.URL(s))
			}
			expr := s[i+2 : i+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validVar(name) {
				return "", fmt.Errorf("%q is not a valid variable name in %q", name, redact.URL(s))
			}
			val, ok := d.env(name)
			switch {
			case ok && (val != "" || !hasDef):
				d.used = append(d.used, name)
				b.WriteString(val)
			case hasDef:
				d.used = append(d.used, name+":-")
				b.WriteString(def)
			default:
				return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
			}
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func validVar(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}
