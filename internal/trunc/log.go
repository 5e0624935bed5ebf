package trunc

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxLogValue bounds a value a log record gets from a message (a UUID, a
// dedup identity) or from an error that may quote one.
const MaxLogValue = 1024

// Log returns s as a log field may carry it: s itself when it is valid
// UTF-8 of at most MaxLogValue bytes without control characters (no
// allocation); otherwise s cut to MaxLogValue bytes (String) and quoted
// as a Go string, so a line break or a terminal escape a producer put in
// a message cannot forge a log line on a logger that writes values as
// they are (Watermill's standard logger does).
func Log(s string) string {
	if len(s) <= MaxLogValue && plain(s) {
		return s
	}
	return strconv.Quote(String(s, MaxLogValue))
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				if r == utf8.RuneError || unicode.IsControl(r) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// LogError returns err as a log record may carry it: err itself when its
// message is plain (Log returns it unchanged), otherwise an error whose
// message is Log's and which unwraps to err.
func LogError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if text := Log(msg); text != msg {
		return &logError{text: text, err: err}
	}
	return err
}

type logError struct {
	text string
	err  error
}

func (e *logError) Error() string { return e.text }
func (e *logError) Unwrap() error { return e.err }
