package trunc

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"fits", "abc", 3, "abc"},
		{"empty", "", 0, ""},
		{"cut ascii", "abcdefgh", 6, "abc…"},
		{"cut before a rune", "aé€z", 6, "aé…"},
		{"no room for text", "abcdef", 3, "…"},
		{"limit below the ellipsis", "abcdef", 1, "…"},
		{"invalid utf-8 replaced", "a\xffb", 10, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := String(tt.in, tt.limit)
			if got != tt.want {
				t.Fatalf("String(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("String(%q, %d) = %q: not valid UTF-8", tt.in, tt.limit, got)
			}
		})
	}
}

func FuzzString(f *testing.F) {
	f.Add("héllo wörld", 8)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = limit % 1024
		if limit < len(Ellipsis) {
			limit = len(Ellipsis)
		}
		got := String(s, limit)
		if len(got) > limit || !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q", s, limit, got)
		}
		if len(got) < len(s) && !strings.HasSuffix(got, Ellipsis) && got != strings.ToValidUTF8(s, "\uFFFD") {
			t.Fatalf("String(%q, %d) = %q: cut without %q", s, limit, got, Ellipsis)
		}
	})
}
