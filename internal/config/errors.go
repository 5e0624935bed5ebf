package config

import (
	"fmt"

	"github.com/levee-dev/levee"
)

// ErrInvalidConfig is wrapped by every error this package returns for bad
// input, and matches levee.ErrInvalidConfig. The YAML configuration is
// loaded through package config (github.com/levee-dev/levee/config), which
// exports it as its own ErrInvalidConfig, hence the text.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/config: invalid configuration")

// Error locates a configuration problem: the file, the 1-based line, the
// dotted key path ("handlers.payments.timeout") and what is wrong.
type Error struct {
	File string
	Line int
	Path string
	Err  error
	// validated is the key path of the struct whose Validate returned the
	// problem, set by the decoder; see FromValidate.
	validated *string
}

// FromValidate reports whether the problem is the error the Validate
// method of the struct decoded at path returned (located at its first
// *FieldError), rather than a decoding error or a nested struct's: a
// caller may then run that Validate again to report every problem it
// finds (Raw.LocateAll).
func (e *Error) FromValidate(path string) bool { return e.validated != nil && *e.validated == path }

// Error formats as "file:line: path: message".
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", loc, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", loc, e.Path, e.Err)
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error match ErrInvalidConfig and levee.ErrInvalidConfig.
func (e *Error) Is(target error) bool {
	return target == ErrInvalidConfig || target == levee.ErrInvalidConfig
}

// FieldError lets a section's Validate method name the key at fault, so the
// error points at that key's line: return config.Field("burst", err).
type FieldError struct {
	Key string
	Err error
}

// Error returns "key: err".
func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Field returns a *FieldError for key (a dotted path relative to the section).
func Field(key string, err error) error { return &FieldError{Key: key, Err: err} }
