package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzTermSafe: whatever a letter holds, termSafe's output is valid UTF-8
// with nothing a terminal acts on (but '\n' when kept), is the input itself
// when that was safe, and grows at most four times (one byte to \xNN).
func FuzzTermSafe(f *testing.F) {
	for _, s := range []string{"", "plain ✓", hostile, "a\nb", "\xff\xfe", "\u2028\u2029\u061c", "\\x1b", "\x00\t\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, keep := range []bool{false, true} {
			got := termSafe(s, keep)
			if !utf8.ValidString(got) {
				t.Fatalf("termSafe(%q, %v) = %q: invalid UTF-8", s, keep, got)
			}
			if bad := terminalActive(got); bad != "" || (!keep && strings.Contains(got, "\n")) {
				t.Fatalf("termSafe(%q, %v) = %q keeps %q", s, keep, got, bad)
			}
			if len(got) > 4*len(s) {
				t.Fatalf("termSafe(%q, %v): %d bytes from %d", s, keep, len(got), len(s))
			}
			if !needsEscape(s, keep) && got != s {
				t.Fatalf("termSafe(%q, %v) = %q changed a safe string", s, keep, got)
			}
		}
	})
}

// FuzzJSONSafe: jsonSafe's output of any encoding/json document decodes
// to the same value and holds nothing a terminal acts on but newlines.
func FuzzJSONSafe(f *testing.F) {
	for _, s := range []string{"", "plain", hostile, "\x7f\u0085\u202e", "\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data, err := json.MarshalIndent(map[string]any{"k" + s: []string{s, s + s}}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got := jsonSafe(data)
		if bad := terminalActive(string(got)); bad != "" {
			t.Fatalf("jsonSafe(%q) = %q keeps %q", data, got, bad)
		}
		var want, back any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("jsonSafe(%q) = %q: %v", data, got, err)
		}
		w, _ := json.Marshal(want)
		b, _ := json.Marshal(back)
		if !bytes.Equal(w, b) {
			t.Fatalf("jsonSafe changed the document: %s, want %s", b, w)
		}
	})
}

// FuzzSelection parses any selector flags: a usage error, or a filter the
// stores accept whose times are the flags' (a duration ago or an RFC 3339
// time).
func FuzzSelection(f *testing.F) {
	f.Add("g", "new", "2h", "2026-01-02T03:04:05Z", "10")
	f.Add("", "bogus", "-1h", "yesterday", "-1")
	f.Add("", "", "2562047h47m16.854775807s", "0001-01-01T00:00:00Z", "99999999999999999999")
	f.Add("\x00", "archived", "9999-12-31T23:59:59.999999999+14:00", "1ns", "0")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, group, status, since, until, limit string) {
		c := &dlqCmd{now: func() time.Time { return now }}
		fs := flag.NewFlagSet("list", flag.ContinueOnError)
		var sel selection
		sel.flags(fs)
		args := []string{"--group", group, "--status", status, "--since", since, "--until", until, "--limit", limit}
		if _, err := parse(fs, args); err != nil {
			return
		}
		filter, err := c.filter(&sel)
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: %v is not a usage error", args, err)
			}
			return
		}
		if err := filter.Validate(); err != nil {
			t.Fatalf("%q: the filter %+v is refused: %v", args, filter, err)
		}
		if since != "" && filter.Since.IsZero() && !strings.HasPrefix(since, "0001-01-01T00:00:00") {
			t.Fatalf("--since %q gave no time", since)
		}
	})
}
